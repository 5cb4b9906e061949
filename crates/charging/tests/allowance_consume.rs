#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Drawing on allowance buckets: eligibility, order, call splitting, and properties.

use toll_catalog::plan::{PlanClass, ServiceScope};
use toll_charging::allowance::{
    AllowanceError, Bucket, BucketSource, CallSegment, CallSplit, Draw, consume, consumption_order,
    split_call,
};
use toll_core::UsageKind;

const GB: i64 = 1 << 30;
const NOW: i64 = 1_800_000_000_000;
const LATER: i64 = NOW + 86_400_000;

fn bucket(
    id: i64,
    usage: UsageKind,
    services: Option<&[&str]>,
    source: BucketSource,
    remaining: i64,
) -> Bucket {
    Bucket {
        id,
        usage,
        services: services.map(|s| ServiceScope::new(s.iter().copied()).unwrap()),
        source,
        remaining,
        expires_ms: LATER,
    }
}

/// The 5G畅享 plan's buckets plus a Douyin pack: general data, WeChat+Douyin data, a Douyin pack
/// and a general data pack.
fn data_buckets() -> Vec<Bucket> {
    vec![
        bucket(1, UsageKind::Data, None, BucketSource::Base, 30 * GB),
        bucket(
            2,
            UsageKind::Data,
            Some(&["wechat", "douyin"]),
            BucketSource::Base,
            10 * GB,
        ),
        bucket(
            3,
            UsageKind::Data,
            Some(&["douyin"]),
            BucketSource::Pack,
            GB,
        ),
        bucket(4, UsageKind::Data, None, BucketSource::Pack, 2 * GB),
        bucket(5, UsageKind::Voice, None, BucketSource::Base, 30_000),
    ]
}

#[test]
fn most_specific_first() {
    let b = data_buckets();
    let order: Vec<i64> = consumption_order(&b, &UsageKind::Data, Some("douyin"), NOW)
        .iter()
        .map(|&i| b[i].id)
        .collect();
    assert_eq!(order, [3, 4, 2, 1]);
    let order: Vec<i64> = consumption_order(&b, &UsageKind::Data, Some("wechat"), NOW)
        .iter()
        .map(|&i| b[i].id)
        .collect();
    assert_eq!(order, [4, 2, 1]);
    let order: Vec<i64> = consumption_order(&b, &UsageKind::Data, None, NOW)
        .iter()
        .map(|&i| b[i].id)
        .collect();
    assert_eq!(
        order,
        [4, 1],
        "an event without a service never uses scoped buckets"
    );
}

#[test]
fn a_usage_spills_from_one_bucket_into_the_next() {
    let mut b = data_buckets();
    let c = consume(&mut b, &UsageKind::Data, Some("douyin"), GB + GB / 2, NOW).unwrap();
    assert_eq!(
        c.draws.as_slice(),
        [
            Draw {
                bucket: 3,
                quantity: GB
            },
            Draw {
                bucket: 4,
                quantity: GB / 2
            }
        ]
    );
    assert_eq!((c.covered, c.uncovered), (GB + GB / 2, 0));
    assert_eq!(b[2].remaining, 0);
    assert_eq!(b[3].remaining, GB + GB / 2);
}

#[test]
fn what_no_bucket_covers_is_uncovered() {
    let mut b = vec![bucket(5, UsageKind::Voice, None, BucketSource::Base, 100)];
    let c = consume(&mut b, &UsageKind::Voice, None, 130, NOW).unwrap();
    assert_eq!((c.covered, c.uncovered), (100, 30));
    assert_eq!(b[0].remaining, 0);
    let c = consume(&mut b, &UsageKind::Voice, None, 60, NOW).unwrap();
    assert_eq!((c.covered, c.uncovered), (0, 60));
    assert!(c.draws.is_empty());
}

#[test]
fn other_kinds_expired_and_foreign_scopes_are_skipped() {
    let mut b = data_buckets();
    b[3].expires_ms = NOW; // expiry is exclusive: at NOW the pack no longer counts
    let c = consume(&mut b, &UsageKind::Data, Some("wechat"), 5, NOW).unwrap();
    assert_eq!(
        c.draws.as_slice(),
        [Draw {
            bucket: 2,
            quantity: 5
        }]
    );
    let c = consume(&mut b, &UsageKind::Sms, None, 1, NOW).unwrap();
    assert_eq!(c.uncovered, 1);
    let c = consume(&mut b, &UsageKind::Data, Some("qq"), 5, NOW).unwrap();
    assert_eq!(
        c.draws.as_slice(),
        [Draw {
            bucket: 1,
            quantity: 5
        }]
    );
}

#[test]
fn ties_go_to_the_earliest_expiry_then_the_lowest_id() {
    let mut b = vec![
        bucket(9, UsageKind::Sms, None, BucketSource::Pack, 10),
        bucket(7, UsageKind::Sms, None, BucketSource::Pack, 10),
        bucket(8, UsageKind::Sms, None, BucketSource::Pack, 10),
    ];
    b[0].expires_ms = NOW + 1;
    let c = consume(&mut b, &UsageKind::Sms, None, 25, NOW).unwrap();
    let ids: Vec<i64> = c.draws.iter().map(|d| d.bucket).collect();
    assert_eq!(ids, [9, 7, 8]);
}

#[test]
fn zero_and_negative_quantities() {
    let mut b = data_buckets();
    let before = b.clone();
    let c = consume(&mut b, &UsageKind::Data, None, 0, NOW).unwrap();
    assert_eq!((c.covered, c.uncovered, c.draws.len()), (0, 0, 0));
    assert_eq!(
        consume(&mut b, &UsageKind::Data, None, -1, NOW),
        Err(AllowanceError::NegativeQuantity(-1))
    );
    assert_eq!(b, before);
}

#[test]
fn a_bucket_below_zero_is_treated_as_exhausted() {
    let mut b = vec![
        bucket(1, UsageKind::Sms, None, BucketSource::Pack, -3),
        bucket(2, UsageKind::Sms, None, BucketSource::Base, 5),
    ];
    let c = consume(&mut b, &UsageKind::Sms, None, 2, NOW).unwrap();
    assert_eq!(
        c.draws.as_slice(),
        [Draw {
            bucket: 2,
            quantity: 2
        }]
    );
    assert_eq!(b[0].remaining, -3);
}

#[test]
fn bucket_source_follows_the_plan_class() {
    assert_eq!(BucketSource::from(PlanClass::Addon), BucketSource::Pack);
    assert_eq!(BucketSource::from(PlanClass::Base), BucketSource::Base);
    assert_eq!(BucketSource::Pack.as_str(), "pack");
}

#[test]
fn a_call_crossing_the_end_of_its_allowance_is_split() {
    // 100 s left, a 130 s call at NOW: 100 s free, the last 30 s start 100 s in.
    let s = split_call(NOW, 130, 100).unwrap();
    assert_eq!(
        s,
        CallSplit {
            covered: Some(CallSegment {
                start_ms: NOW,
                seconds: 100
            }),
            uncovered: Some(CallSegment {
                start_ms: NOW + 100_000,
                seconds: 30
            }),
        }
    );
    assert_eq!(split_call(NOW, 60, 60).unwrap().uncovered, None);
    assert_eq!(split_call(NOW, 60, 0).unwrap().covered, None);
    assert_eq!(
        split_call(NOW, 60, 61),
        Err(AllowanceError::CoveredOutOfRange {
            covered: 61,
            usage: 60
        })
    );
    assert!(split_call(NOW, 60, -1).is_err());
    assert!(split_call(NOW, -1, 0).is_err());
    assert_eq!(
        split_call(i64::MAX, 10, 5),
        Err(AllowanceError::TimeOverflow)
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const SERVICES: [&str; 3] = ["wechat", "douyin", "qq"];

    fn any_bucket() -> impl Strategy<Value = Bucket> {
        (
            0i64..20,
            prop_oneof![Just(UsageKind::Data), Just(UsageKind::Voice)],
            prop::option::of(prop::sample::subsequence(SERVICES.to_vec(), 1..=2)),
            prop_oneof![Just(BucketSource::Pack), Just(BucketSource::Base)],
            -5i64..1000,
            NOW - 10..NOW + 10,
        )
            .prop_map(
                |(id, usage, services, source, remaining, expires_ms)| Bucket {
                    id,
                    usage,
                    services: services.map(|s| ServiceScope::new(s).unwrap()),
                    source,
                    remaining,
                    expires_ms,
                },
            )
    }

    proptest! {
        #[test]
        fn consumption_invariants(
            mut buckets in prop::collection::vec(any_bucket(), 0..8),
            quantity in 0i64..5000,
            service in prop::option::of(prop::sample::select(SERVICES.to_vec())),
        ) {
            let before = buckets.clone();
            let usage = UsageKind::Data;
            let order = consumption_order(&buckets, &usage, service, NOW);
            let c = consume(&mut buckets, &usage, service, quantity, NOW).unwrap();

            prop_assert_eq!(c.covered + c.uncovered, quantity);
            prop_assert_eq!(c.draws.iter().map(|d| d.quantity).sum::<i64>(), c.covered);
            for (b, old) in buckets.iter().zip(&before) {
                prop_assert!(b.remaining >= 0 || b.remaining == old.remaining, "went negative");
                prop_assert!(b.remaining <= old.remaining);
                let taken = old.remaining - b.remaining;
                if taken > 0 {
                    prop_assert!(b.is_eligible(&usage, service, NOW));
                }
            }
            // A bucket later in the order is touched only if every earlier one is exhausted.
            let mut earlier_left = false;
            for &i in &order {
                let touched = buckets[i].remaining != before[i].remaining;
                prop_assert!(!(touched && earlier_left), "skipped a bucket with units left");
                if buckets[i].remaining > 0 {
                    earlier_left = true;
                }
            }
            // Nothing is left uncovered while an eligible bucket still has units.
            if c.uncovered > 0 {
                prop_assert!(order.iter().all(|&i| buckets[i].remaining <= 0));
            }
            // The order is by specificity, then expiry, then id.
            let keys: Vec<_> = order.iter().map(|&i| (buckets[i].specificity_rank(), buckets[i].expires_ms, buckets[i].id)).collect();
            prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        }

        #[test]
        fn split_pieces_add_up((start, usage, covered) in (-1_000_000_000i64..1_000_000_000_000, 0i64..100_000)
            .prop_flat_map(|(s, u)| (Just(s), Just(u), 0..=u))) {
            let s = split_call(start, usage, covered).unwrap();
            let head = s.covered.map_or(0, |h| h.seconds);
            let tail = s.uncovered.map_or(0, |t| t.seconds);
            prop_assert_eq!(head + tail, usage);
            if let Some(t) = s.uncovered {
                prop_assert_eq!(t.start_ms, start + covered * 1000);
            }
        }
    }
}
