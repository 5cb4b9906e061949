//! Allowance buckets (额度) and the order a usage draws on them.
//!
//! Each period a subscription gets one bucket per allowance of its plan and of each add-on pack
//! it holds (a family plan's buckets are shared by its member lines: the store passes the same
//! buckets for every member). A usage event draws on the eligible buckets **most specific
//! first**, so that a pack bought for named services (定向流量) is spent before general data and
//! an add-on before the base plan:
//!
//! 1. service-scoped packs, 2. unscoped packs, 3. service-scoped base allowances,
//! 4. unscoped base allowances;
//!
//! ties broken by earliest expiry (use what would be lost first), then lowest id (stable).
//! Whatever no bucket covers is *uncovered*: the plan's overage entry or its tariff prices it
//! ([`crate::overage`], [`split_call`]).
//!
//! Quantities are integers of the usage kind's base unit (voice seconds, messages, bytes,
//! custom units), as the plan definitions hold them.

use smallvec::SmallVec;
use toll_catalog::plan::{PlanClass, ServiceScope};
use toll_core::UsageKind;

/// Where a bucket's quantity came from; packs are drawn before the base plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketSource {
    /// An add-on pack (叠加包 / 定向流量包).
    Pack,
    /// The subscription's base plan.
    Base,
}

impl BucketSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BucketSource::Pack => "pack",
            BucketSource::Base => "base",
        }
    }
}

impl From<PlanClass> for BucketSource {
    fn from(c: PlanClass) -> Self {
        match c {
            PlanClass::Base => BucketSource::Base,
            PlanClass::Addon => BucketSource::Pack,
        }
    }
}

/// What is left of one allowance in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The store's id; it names the bucket in [`Draw`]s and breaks ties in the order.
    pub id: i64,
    pub usage: UsageKind,
    /// `None`: any event of the usage kind may draw on it; otherwise only events of a listed
    /// service.
    pub services: Option<ServiceScope>,
    pub source: BucketSource,
    /// Base units left; a bucket at 0 (or, defensively, below) is exhausted.
    pub remaining: i64,
    /// Unix milliseconds from which the bucket no longer counts (exclusive end of validity).
    pub expires_ms: i64,
}

impl Bucket {
    /// Whether an event of `usage` (for `service`, if any) at `at_ms` may draw on this bucket,
    /// whatever is left in it: same usage kind, not expired (`at_ms < expires_ms`), and either
    /// unscoped or scoped to a list that names the event's service. An event without a service
    /// never draws on a scoped bucket.
    pub fn is_eligible(&self, usage: &UsageKind, service: Option<&str>, at_ms: i64) -> bool {
        self.usage == *usage
            && at_ms < self.expires_ms
            && match &self.services {
                None => true,
                Some(scope) => service.is_some_and(|s| scope.contains(s)),
            }
    }

    /// Position class in the draw order: 0 scoped pack, 1 pack, 2 scoped base, 3 base.
    pub fn specificity_rank(&self) -> u8 {
        let scoped = self.services.is_some();
        match (self.source, scoped) {
            (BucketSource::Pack, true) => 0,
            (BucketSource::Pack, false) => 1,
            (BucketSource::Base, true) => 2,
            (BucketSource::Base, false) => 3,
        }
    }
}

/// Part of an event's quantity taken from one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Draw {
    pub bucket: i64,
    pub quantity: i64,
}

/// How an event's quantity was covered: `covered + uncovered = quantity` and the draws add up
/// to `covered`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumption {
    /// In draw order; only buckets something was taken from.
    pub draws: SmallVec<[Draw; 2]>,
    pub covered: i64,
    /// Left for the overage entry or the tariff.
    pub uncovered: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowanceError {
    #[error("usage quantity {0} must not be negative")]
    NegativeQuantity(i64),
    #[error("covered seconds {covered} must be between 0 and the call's {usage} seconds")]
    CoveredOutOfRange { covered: i64, usage: i64 },
    #[error("call time out of range")]
    TimeOverflow,
}

/// Indices of the buckets an event may draw on, in the order it draws on them (exhausted ones
/// included: eligibility does not depend on what is left).
pub fn consumption_order(
    buckets: &[Bucket],
    usage: &UsageKind,
    service: Option<&str>,
    at_ms: i64,
) -> SmallVec<[usize; 8]> {
    let mut order: SmallVec<[usize; 8]> = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_eligible(usage, service, at_ms))
        .map(|(i, _)| i)
        .collect();
    order.sort_by_key(|&i| {
        let b = &buckets[i];
        (b.specificity_rank(), b.expires_ms, b.id)
    });
    order
}

/// Draws `quantity` base units of `usage` at `at_ms` from `buckets`, most specific first,
/// lowering their `remaining` in place. Nothing is changed when it returns an error.
pub fn consume(
    buckets: &mut [Bucket],
    usage: &UsageKind,
    service: Option<&str>,
    quantity: i64,
    at_ms: i64,
) -> Result<Consumption, AllowanceError> {
    if quantity < 0 {
        return Err(AllowanceError::NegativeQuantity(quantity));
    }
    let mut left = quantity;
    let mut draws = SmallVec::new();
    for i in consumption_order(buckets, usage, service, at_ms) {
        if left == 0 {
            break;
        }
        let b = &mut buckets[i];
        if b.remaining <= 0 {
            continue;
        }
        let take = left.min(b.remaining);
        b.remaining -= take;
        left -= take;
        draws.push(Draw {
            bucket: b.id,
            quantity: take,
        });
    }
    Ok(Consumption {
        draws,
        covered: quantity - left,
        uncovered: left,
    })
}

/// A stretch of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallSegment {
    /// Unix milliseconds.
    pub start_ms: i64,
    pub seconds: i64,
}

/// A call cut where its allowance ran out: the head the allowance covered and the tail beyond
/// it, which starts `covered` seconds after the call and is the only part the tariff rates
/// (so the tail's time band is the one it actually fell in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallSplit {
    /// `None` when nothing was covered.
    pub covered: Option<CallSegment>,
    /// `None` when the allowance covered the whole call.
    pub uncovered: Option<CallSegment>,
}

/// Splits a call of `usage_seconds` starting at `start_ms` after `covered_seconds` of it were
/// covered by allowances ([`Consumption::covered`] of a voice event).
pub fn split_call(
    start_ms: i64,
    usage_seconds: i64,
    covered_seconds: i64,
) -> Result<CallSplit, AllowanceError> {
    if usage_seconds < 0 {
        return Err(AllowanceError::NegativeQuantity(usage_seconds));
    }
    if !(0..=usage_seconds).contains(&covered_seconds) {
        return Err(AllowanceError::CoveredOutOfRange {
            covered: covered_seconds,
            usage: usage_seconds,
        });
    }
    let tail_start = covered_seconds
        .checked_mul(1000)
        .and_then(|ms| start_ms.checked_add(ms))
        .ok_or(AllowanceError::TimeOverflow)?;
    let tail = usage_seconds - covered_seconds;
    Ok(CallSplit {
        covered: (covered_seconds > 0).then_some(CallSegment {
            start_ms,
            seconds: covered_seconds,
        }),
        uncovered: (tail > 0).then_some(CallSegment {
            start_ms: tail_start,
            seconds: tail,
        }),
    })
}
