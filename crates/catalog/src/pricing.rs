//! Usage pricing models: what a quantity of usage costs beyond what a plan includes.
//!
//! Peers disagree on tier conventions (inclusive integer ranges, half-open ranges, tier sizes in
//! blocks), so Toll has one, stated exactly: **tiers have inclusive `up_to` upper bounds over
//! continuous quantities**, in increasing order, and the last tier has none (it is unbounded).
//! A tier covers the quantities above the previous tier's bound up to and including its own.
//! `docs/pricing.md` shows how other conventions are written in this one.
//!
//! Every amount is exact (`rust_decimal`); rounding to the currency's minor unit belongs to the
//! invoice, not here. A zero quantity costs nothing (no flat fee), negative quantities are
//! refused, and every result carries its breakdown per tier.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

/// Most tiers a pricing may have: a limit, so that no definition makes pricing slow.
pub const MAX_TIERS: usize = 1000;

/// Why a pricing definition or a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("{0}")]
    Definition(String),
    #[error("quantity {0} must not be negative")]
    NegativeQuantity(Decimal),
    #[error("amount out of range")]
    Overflow,
}

fn def_err(msg: impl Into<String>) -> PricingError {
    PricingError::Definition(msg.into())
}

/// One tier of a graduated or volume pricing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// Inclusive upper bound; `None` only on the last tier.
    pub up_to: Option<Decimal>,
    /// Price of `per` units (default one unit).
    pub unit_price: Decimal,
    pub per: Decimal,
    /// When set, the tier's quantity is rounded up to a multiple of it (telecom-style
    /// per-interval charging).
    pub increment: Option<Decimal>,
    /// Charged once when any quantity falls in the tier.
    pub flat_fee: Decimal,
}

/// One tier of a block pricing: usage counted in whole blocks of `block_size` units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTier {
    pub block_size: Decimal,
    /// Blocks this tier holds; `None` only on the last tier.
    pub max_blocks: Option<Decimal>,
    pub block_price: Decimal,
}

/// How block tiers combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMode {
    /// Each tier prices the blocks that fall in it (Kill Bill's ALL_TIERS).
    AllTiers,
    /// The tier the usage ends in prices all of it (Kill Bill's TOP_TIER).
    TopTier,
}

/// A usage pricing model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    /// quantity × unit price.
    PerUnit { unit_price: Decimal },
    /// Each tier prices the units inside it, plus its flat fee when any unit reaches it.
    Graduated { tiers: Vec<Tier> },
    /// The tier containing the total prices every unit, plus that tier's flat fee.
    Volume { tiers: Vec<Tier> },
    /// ceil((quantity − free units) / package size) × package price.
    Package {
        package_size: Decimal,
        package_price: Decimal,
        free_units: Decimal,
    },
    /// Tiers counted in blocks (partial blocks round up).
    Blocks {
        mode: BlockMode,
        tiers: Vec<BlockTier>,
    },
    /// rate % of each event's amount + a fixed fee per event; the first `free_events` events
    /// and the first `free_amount` of amount are free; per-event min and max.
    Percentage {
        rate_percent: Decimal,
        fixed_fee: Decimal,
        free_events: u64,
        free_amount: Decimal,
        min_per_event: Option<Decimal>,
        max_per_event: Option<Decimal>,
    },
}

/// One line of a price's breakdown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    /// Which tier (0-based) or part this line prices.
    pub tier: usize,
    /// What it priced: units, blocks, packages or events.
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub flat_fee: Decimal,
    pub amount: Decimal,
}

/// The price of a quantity, with its breakdown; `amount` = Σ lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Price {
    pub amount: Decimal,
    pub lines: Vec<Line>,
}

impl Price {
    fn from_lines(lines: Vec<Line>) -> Result<Price, PricingError> {
        let mut amount = Decimal::ZERO;
        for l in &lines {
            amount = amount.checked_add(l.amount).ok_or(PricingError::Overflow)?;
        }
        Ok(Price { amount, lines })
    }
}

fn mul(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_mul(b).ok_or(PricingError::Overflow)
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, PricingError> {
    a.checked_add(b).ok_or(PricingError::Overflow)
}

/// Whole `size`s needed to hold `q` (q ≥ 0, size > 0).
fn ceil_div(q: Decimal, size: Decimal) -> Result<Decimal, PricingError> {
    Ok(q.checked_div(size).ok_or(PricingError::Overflow)?.ceil())
}

impl Pricing {
    /// Checks the invariants every model needs; definitions are validated once, when loaded.
    pub fn validate(&self) -> Result<(), PricingError> {
        let non_neg = |d: Decimal, what: &str| {
            if d.is_sign_negative() && !d.is_zero() {
                Err(def_err(format!("{what} must not be negative")))
            } else {
                Ok(())
            }
        };
        let positive = |d: Decimal, what: &str| {
            if d <= Decimal::ZERO {
                Err(def_err(format!("{what} must be greater than zero")))
            } else {
                Ok(())
            }
        };
        match self {
            Pricing::PerUnit { unit_price } => non_neg(*unit_price, "unit_price"),
            Pricing::Graduated { tiers } | Pricing::Volume { tiers } => {
                if tiers.is_empty() || tiers.len() > MAX_TIERS {
                    return Err(def_err(format!(
                        "a tiered pricing needs 1 to {MAX_TIERS} tiers"
                    )));
                }
                let mut prev = Decimal::ZERO;
                for (i, t) in tiers.iter().enumerate() {
                    let last = i + 1 == tiers.len();
                    match (t.up_to, last) {
                        (None, false) => {
                            return Err(def_err(format!(
                                "tier {}: only the last tier may omit up_to",
                                i + 1
                            )));
                        }
                        (Some(_), true) => {
                            return Err(def_err(
                                "the last tier must have no up_to (it is unbounded)",
                            ));
                        }
                        (Some(u), false) => {
                            if u <= prev {
                                return Err(def_err(format!(
                                    "tier {}: up_to {u} must be above the previous bound {prev}",
                                    i + 1
                                )));
                            }
                            prev = u;
                        }
                        (None, true) => {}
                    }
                    non_neg(t.unit_price, "unit_price")?;
                    non_neg(t.flat_fee, "flat_fee")?;
                    positive(t.per, "per")?;
                    if let Some(inc) = t.increment {
                        positive(inc, "increment")?;
                    }
                }
                Ok(())
            }
            Pricing::Package {
                package_size,
                package_price,
                free_units,
            } => {
                positive(*package_size, "package_size")?;
                non_neg(*package_price, "package_price")?;
                non_neg(*free_units, "free_units")
            }
            Pricing::Blocks { tiers, .. } => {
                if tiers.is_empty() || tiers.len() > MAX_TIERS {
                    return Err(def_err(format!(
                        "a block pricing needs 1 to {MAX_TIERS} tiers"
                    )));
                }
                for (i, t) in tiers.iter().enumerate() {
                    let last = i + 1 == tiers.len();
                    positive(t.block_size, "block_size")?;
                    non_neg(t.block_price, "block_price")?;
                    match (t.max_blocks, last) {
                        (None, false) => {
                            return Err(def_err(format!(
                                "tier {}: only the last tier may omit max_blocks",
                                i + 1
                            )));
                        }
                        (Some(_), true) => {
                            return Err(def_err(
                                "the last tier must have no max_blocks (it is unbounded)",
                            ));
                        }
                        (Some(m), false) => positive(m, "max_blocks")?,
                        (None, true) => {}
                    }
                }
                Ok(())
            }
            Pricing::Percentage {
                rate_percent,
                fixed_fee,
                free_amount,
                min_per_event,
                max_per_event,
                ..
            } => {
                non_neg(*rate_percent, "rate")?;
                non_neg(*fixed_fee, "fixed_fee")?;
                non_neg(*free_amount, "free_amount")?;
                if let (Some(min), Some(max)) = (min_per_event, max_per_event)
                    && min > max
                {
                    return Err(def_err("min_per_event is above max_per_event"));
                }
                Ok(())
            }
        }
    }

    /// The price of a quantity. For `Percentage`, the quantity is one event's amount.
    pub fn price(&self, quantity: Decimal) -> Result<Price, PricingError> {
        if quantity.is_sign_negative() && !quantity.is_zero() {
            return Err(PricingError::NegativeQuantity(quantity));
        }
        if let Pricing::Percentage { .. } = self {
            return self.price_events(&[quantity]);
        }
        if quantity.is_zero() {
            return Ok(Price {
                amount: Decimal::ZERO,
                lines: Vec::new(),
            });
        }
        match self {
            Pricing::PerUnit { unit_price } => Price::from_lines(vec![Line {
                tier: 0,
                quantity,
                unit_price: *unit_price,
                flat_fee: Decimal::ZERO,
                amount: mul(quantity, *unit_price)?,
            }]),
            Pricing::Graduated { tiers } => {
                let mut lines = Vec::new();
                let mut prev = Decimal::ZERO;
                for (i, t) in tiers.iter().enumerate() {
                    if quantity <= prev {
                        break;
                    }
                    let top = t.up_to.map_or(quantity, |u| u.min(quantity));
                    let units = top - prev;
                    lines.push(tier_line(i, t, units)?);
                    prev = t.up_to.unwrap_or(quantity);
                }
                Price::from_lines(lines)
            }
            Pricing::Volume { tiers } => {
                let (i, t) = tiers
                    .iter()
                    .enumerate()
                    .find(|(_, t)| t.up_to.is_none_or(|u| quantity <= u))
                    .ok_or_else(|| def_err("no tier contains the quantity"))?;
                Price::from_lines(vec![tier_line(i, t, quantity)?])
            }
            Pricing::Package {
                package_size,
                package_price,
                free_units,
            } => {
                if quantity <= *free_units {
                    return Ok(Price {
                        amount: Decimal::ZERO,
                        lines: Vec::new(),
                    });
                }
                let packages = ceil_div(quantity - *free_units, *package_size)?;
                Price::from_lines(vec![Line {
                    tier: 0,
                    quantity: packages,
                    unit_price: *package_price,
                    flat_fee: Decimal::ZERO,
                    amount: mul(packages, *package_price)?,
                }])
            }
            Pricing::Blocks { mode, tiers } => price_blocks(*mode, tiers, quantity),
            Pricing::Percentage { .. } => Err(def_err("unreachable: percentage handled above")),
        }
    }

    /// The price of a sequence of events (their amounts), for `Percentage`; other models price
    /// the events' total.
    pub fn price_events(&self, amounts: &[Decimal]) -> Result<Price, PricingError> {
        let Pricing::Percentage {
            rate_percent,
            fixed_fee,
            free_events,
            free_amount,
            min_per_event,
            max_per_event,
        } = self
        else {
            let mut total = Decimal::ZERO;
            for a in amounts {
                total = add(total, *a)?;
            }
            return self.price(total);
        };
        let rate = rate_percent
            .checked_div(Decimal::ONE_HUNDRED)
            .ok_or(PricingError::Overflow)?;
        let mut free_left = *free_amount;
        let mut lines = Vec::with_capacity(amounts.len());
        for (i, &a) in amounts.iter().enumerate() {
            if a.is_sign_negative() && !a.is_zero() {
                return Err(PricingError::NegativeQuantity(a));
            }
            if (i as u64) < *free_events {
                continue;
            }
            let covered = a.min(free_left);
            free_left -= covered;
            let chargeable = a - covered;
            let mut fee = add(mul(chargeable, rate)?, *fixed_fee)?;
            if let Some(min) = min_per_event {
                fee = fee.max(*min);
            }
            if let Some(max) = max_per_event {
                fee = fee.min(*max);
            }
            lines.push(Line {
                tier: i,
                quantity: chargeable,
                unit_price: rate,
                flat_fee: *fixed_fee,
                amount: fee,
            });
        }
        Price::from_lines(lines)
    }
}

/// A graduated/volume tier pricing `units` of it.
fn tier_line(i: usize, t: &Tier, units: Decimal) -> Result<Line, PricingError> {
    let billed = match t.increment {
        Some(inc) => mul(ceil_div(units, inc)?, inc)?,
        None => units,
    };
    let per_units = billed.checked_div(t.per).ok_or(PricingError::Overflow)?;
    let amount = add(mul(per_units, t.unit_price)?, t.flat_fee)?;
    Ok(Line {
        tier: i,
        quantity: billed,
        unit_price: t.unit_price,
        flat_fee: t.flat_fee,
        amount,
    })
}

fn price_blocks(
    mode: BlockMode,
    tiers: &[BlockTier],
    quantity: Decimal,
) -> Result<Price, PricingError> {
    // Walk the tiers, filling each with whole blocks of its own size.
    let mut left = quantity;
    let mut lines = Vec::new();
    for (i, t) in tiers.iter().enumerate() {
        if left <= Decimal::ZERO {
            break;
        }
        let needed = ceil_div(left, t.block_size)?;
        let blocks = t.max_blocks.map_or(needed, |m| needed.min(m));
        let covered = mul(blocks, t.block_size)?;
        left -= covered.min(left);
        lines.push(Line {
            tier: i,
            quantity: blocks,
            unit_price: t.block_price,
            flat_fee: Decimal::ZERO,
            amount: mul(blocks, t.block_price)?,
        });
    }
    match mode {
        BlockMode::AllTiers => Price::from_lines(lines),
        BlockMode::TopTier => {
            // The tier the usage ends in prices all of it, in its own block size.
            let Some(top) = lines.last().map(|l| l.tier) else {
                return Ok(Price {
                    amount: Decimal::ZERO,
                    lines: Vec::new(),
                });
            };
            let t = &tiers[top];
            let blocks = ceil_div(quantity, t.block_size)?;
            Price::from_lines(vec![Line {
                tier: top,
                quantity: blocks,
                unit_price: t.block_price,
                flat_fee: Decimal::ZERO,
                amount: mul(blocks, t.block_price)?,
            }])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The written form: TOML, exactly as plans embed it (`docs/pricing.md`).
// ---------------------------------------------------------------------------------------------

/// A decimal written as a TOML string (`"0.15"`) or integer (`15`); floats are refused, since a
/// binary float cannot hold most prices exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec(pub Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal as a string (\"0.15\") or an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dec, E> {
                Ok(Dec(Decimal::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dec, E> {
                Ok(Dec(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dec, E> {
                Err(E::custom(format!(
                    "{v} is a float: write the amount as a string, e.g. \"{v}\""
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dec, E> {
                let t = v.trim();
                let body = t.strip_prefix(['-', '+']).unwrap_or(t);
                let (int, frac) = body.split_once('.').unwrap_or((body, ""));
                let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
                    return Err(E::custom(format!("{t:?} is not a decimal number")));
                }
                Decimal::from_str(t)
                    .map(Dec)
                    .map_err(|_| E::custom(format!("{t:?} is not a decimal number")))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierText {
    up_to: Option<Dec>,
    #[serde(default)]
    unit_price: Option<Dec>,
    per: Option<Dec>,
    increment: Option<Dec>,
    flat_fee: Option<Dec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockTierText {
    block_size: Dec,
    max_blocks: Option<Dec>,
    block_price: Dec,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
enum PricingText {
    PerUnit {
        unit_price: Dec,
    },
    Graduated {
        tiers: Vec<TierText>,
    },
    Volume {
        tiers: Vec<TierText>,
    },
    Package {
        package_size: Dec,
        package_price: Dec,
        free_units: Option<Dec>,
    },
    Blocks {
        mode: Option<String>,
        tiers: Vec<BlockTierText>,
    },
    Percentage {
        rate: Dec,
        fixed_fee: Option<Dec>,
        free_events: Option<u64>,
        free_amount: Option<Dec>,
        min_per_event: Option<Dec>,
        max_per_event: Option<Dec>,
    },
}

fn tiers(list: Vec<TierText>) -> Vec<Tier> {
    list.into_iter()
        .map(|t| Tier {
            up_to: t.up_to.map(|d| d.0),
            unit_price: t.unit_price.map_or(Decimal::ZERO, |d| d.0),
            per: t.per.map_or(Decimal::ONE, |d| d.0),
            increment: t.increment.map(|d| d.0),
            flat_fee: t.flat_fee.map_or(Decimal::ZERO, |d| d.0),
        })
        .collect()
}

impl FromStr for Pricing {
    type Err = PricingError;

    /// Reads a pricing written in TOML (`model = "graduated"`, `tiers = [...]`, ...) and
    /// validates it. Errors say where (line and column) and why.
    fn from_str(text: &str) -> Result<Pricing, PricingError> {
        let parsed: PricingText = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {col}: ")
                })
                .unwrap_or_default();
            def_err(format!("{at}{}", e.message()))
        })?;
        let p = match parsed {
            PricingText::PerUnit { unit_price } => Pricing::PerUnit {
                unit_price: unit_price.0,
            },
            PricingText::Graduated { tiers: t } => Pricing::Graduated { tiers: tiers(t) },
            PricingText::Volume { tiers: t } => Pricing::Volume { tiers: tiers(t) },
            PricingText::Package {
                package_size,
                package_price,
                free_units,
            } => Pricing::Package {
                package_size: package_size.0,
                package_price: package_price.0,
                free_units: free_units.map_or(Decimal::ZERO, |d| d.0),
            },
            PricingText::Blocks { mode, tiers: t } => Pricing::Blocks {
                mode: match mode.as_deref() {
                    None | Some("all_tiers") => BlockMode::AllTiers,
                    Some("top_tier") => BlockMode::TopTier,
                    Some(other) => {
                        return Err(def_err(format!(
                            "blocks mode {other:?} is not all_tiers or top_tier"
                        )));
                    }
                },
                tiers: t
                    .into_iter()
                    .map(|b| BlockTier {
                        block_size: b.block_size.0,
                        max_blocks: b.max_blocks.map(|d| d.0),
                        block_price: b.block_price.0,
                    })
                    .collect(),
            },
            PricingText::Percentage {
                rate,
                fixed_fee,
                free_events,
                free_amount,
                min_per_event,
                max_per_event,
            } => Pricing::Percentage {
                rate_percent: rate.0,
                fixed_fee: fixed_fee.map_or(Decimal::ZERO, |d| d.0),
                free_events: free_events.unwrap_or(0),
                free_amount: free_amount.map_or(Decimal::ZERO, |d| d.0),
                min_per_event: min_per_event.map(|d| d.0),
                max_per_event: max_per_event.map(|d| d.0),
            },
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn p(text: &str) -> Pricing {
        text.parse().unwrap()
    }

    #[test]
    fn graduated_flat_fees_and_bounds() {
        let g = p(r#"model = "graduated"
tiers = [ { up_to = 5, flat_fee = "100" }, { up_to = 10, flat_fee = "50" },
          { up_to = 15, unit_price = "10" }, { unit_price = "5" } ]"#);
        assert_eq!(g.price(d("22")).unwrap().amount, d("235"));
        assert_eq!(g.price(d("5")).unwrap().amount, d("100"));
        assert_eq!(g.price(d("5.001")).unwrap().amount, d("150"));
        assert_eq!(g.price(d("12")).unwrap().amount, d("170"));
        // Toll's rule: zero costs nothing, even with a first-tier flat fee.
        assert_eq!(g.price(Decimal::ZERO).unwrap().amount, Decimal::ZERO);
    }

    #[test]
    fn definitions_are_checked() {
        for bad in [
            r#"model = "graduated"
tiers = [ { up_to = 10, unit_price = "1" } ]"#,
            r#"model = "graduated"
tiers = [ { unit_price = "1" }, { unit_price = "1" } ]"#,
            r#"model = "graduated"
tiers = [ { up_to = 10, unit_price = "1" }, { up_to = 5, unit_price = "1" }, { unit_price = "1" } ]"#,
            r#"model = "package"
package_size = 0
package_price = "1""#,
            r#"model = "per_unit"
unit_price = 0.15"#,
            r#"model = "per_unit"
unit_price = "-1""#,
            r#"model = "auction""#,
            r#"model = "per_unit"
unit_price = "1"
colour = "red""#,
        ] {
            assert!(bad.parse::<Pricing>().is_err(), "accepted: {bad}");
        }
        let err = "model = \"per_unit\"\nunit_price = 0.15"
            .parse::<Pricing>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("0.15") && err.contains("float"), "{err}");
    }

    #[test]
    fn negative_quantities_are_refused() {
        let u = p("model = \"per_unit\"\nunit_price = \"2\"");
        assert_eq!(
            u.price(d("-1")),
            Err(PricingError::NegativeQuantity(d("-1")))
        );
        assert_eq!(u.price(d("2.5")).unwrap().amount, d("5.0"));
    }

    #[test]
    fn percentage_with_free_events_amount_and_bounds() {
        let pct = p(r#"model = "percentage"
rate = "2.9"
fixed_fee = "0.30"
free_events = 1
free_amount = "50"
min_per_event = "0.50"
max_per_event = "5""#);
        // event 1 free; event 2: 100 - 50 free = 50 × 2.9 % + 0.30 = 1.75; event 3: 10 → 0.59;
        // event 4: 1000 → 29.30 capped at 5; event 5: 0 → 0.30 raised to 0.50.
        let price = pct
            .price_events(&[d("100"), d("100"), d("10"), d("1000"), d("0")])
            .unwrap();
        assert_eq!(price.amount, d("7.84"));
        assert_eq!(price.lines.len(), 4);
    }

    #[test]
    fn top_tier_blocks_price_everything_at_the_last_tier_reached() {
        let b = p(r#"model = "blocks"
mode = "top_tier"
tiers = [ { block_size = 10, max_blocks = 100, block_price = "1" }, { block_size = 10, block_price = "0.5" } ]"#);
        assert_eq!(b.price(d("1500")).unwrap().amount, d("75"));
        assert_eq!(b.price(d("995")).unwrap().amount, d("100"));
    }

    proptest::proptest! {
        #[test]
        fn graduated_never_decreases_and_lines_sum(q in 0u64..100_000, extra in 0u64..1000) {
            let g = p(r#"model = "graduated"
    tiers = [ { up_to = 10, unit_price = "10", flat_fee = "2" }, { up_to = 20, unit_price = "5", flat_fee = "3" }, { unit_price = "5", flat_fee = "3" } ]"#);
            let a = g.price(Decimal::from(q)).unwrap();
            let b = g.price(Decimal::from(q + extra)).unwrap();
            proptest::prop_assert!(a.amount <= b.amount);
            proptest::prop_assert_eq!(a.amount, a.lines.iter().map(|l| l.amount).sum::<Decimal>());
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = s.parse::<Pricing>();
        }
    }
}
