//! The bands of a schedule on one kind of day, worked out at compile time.
//!
//! Finding the band active at a time of day means scanning the schedule's rows: which of them
//! apply on this day, which started last, which outranks which. The answer depends only on the
//! schedule, on which timings match the day (the day's *class*, see
//! [`crate::tariff::DayTimings`]) and on where the time of day falls between the rows' starts.
//! A tariff has a handful of schedules and of day classes (weekday, weekend, holiday), so every
//! (schedule, class) pair gets its band changes as a short table, read with a few comparisons
//! and no branches that depend on the call.

use rustc_hash::FxHashMap;

use crate::tariff::{NONE, Schedule};

/// Band changes a table holds in one day; a day with more keeps the row scan.
pub(crate) const POINTS: usize = 4;
// `DayBands::at` compares the three starts after the first one.
const _: () = assert!(POINTS == 4);
/// Most (schedule, class) pairs tables are built for (4 bytes each).
const MAX_PAIRS: usize = 1 << 22;

/// The answer of the row scan for every time of day, on one kind of day: from `starts[i]`
/// until `starts[i + 1]` row `rows[i]` is active until `nexts[i]` (`NONE`: no band).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DayBands {
    /// Sorted, `starts[0] = 0`; unused entries `i64::MAX`.
    starts: [i64; POINTS],
    rows: [u32; POINTS],
    nexts: [i64; POINTS],
}

impl DayBands {
    /// The active row at `tod` (nanoseconds after local midnight) and the time of day the
    /// active row next changes, as [`crate::engine::scan_rows`] answers.
    #[inline]
    pub(crate) fn at(&self, tod: i64) -> Option<(usize, i64)> {
        debug_assert!(tod >= 0);
        let i = usize::from(tod >= self.starts[1])
            + usize::from(tod >= self.starts[2])
            + usize::from(tod >= self.starts[3]);
        let row = self.rows[i];
        (row != NONE).then_some((row as usize, self.nexts[i]))
    }

    /// The table of `sched` on a day whose matching timings are `mask`, or `None` when the
    /// day has more than [`POINTS`] band changes.
    fn build(
        sched: &Schedule,
        mask: u64,
        scan: &impl Fn(&Schedule, u64, i64) -> Option<(usize, i64)>,
    ) -> Option<DayBands> {
        let mut points: Vec<i64> = std::iter::once(0)
            .chain(
                sched
                    .rows
                    .iter()
                    .filter(|r| (mask >> r.timing) & 1 == 1)
                    .map(|r| r.start),
            )
            .collect();
        points.sort_unstable();
        points.dedup();
        if points.len() > POINTS {
            return None;
        }
        let mut bands = DayBands {
            starts: [i64::MAX; POINTS],
            rows: [NONE; POINTS],
            nexts: [0; POINTS],
        };
        for (i, &p) in points.iter().enumerate() {
            // The scan's answer is the same at every instant from one start to the next: it
            // depends only on which rows have started.
            let found = scan(sched, mask, p);
            bands.starts[i] = p;
            bands.rows[i] = found.map_or(NONE, |(r, _)| r as u32);
            bands.nexts[i] = found.map_or(0, |(_, n)| n);
        }
        Some(bands)
    }
}

/// Per schedule and day class, the day's [`DayBands`].
#[derive(Debug, Clone, Default)]
pub(crate) struct BandTables {
    /// Distinct tables (weekdays of every schedule usually share one).
    pub days: Box<[DayBands]>,
    /// Per schedule: class → index into `days`, `NONE` where the scan is kept.
    pub by_schedule: Vec<Box<[u32]>>,
}

impl BandTables {
    /// Tables for every schedule and class (`class_masks[c]`: the timings matching class `c`);
    /// empty when there would be too many.
    pub(crate) fn build(
        schedules: &[Schedule],
        class_masks: &[u64],
        scan: impl Fn(&Schedule, u64, i64) -> Option<(usize, i64)>,
    ) -> BandTables {
        if schedules.len().saturating_mul(class_masks.len()) > MAX_PAIRS {
            return BandTables::default();
        }
        let mut days: Vec<DayBands> = Vec::new();
        let mut ids: FxHashMap<DayBands, u32> = FxHashMap::default();
        let by_schedule = schedules
            .iter()
            .map(|sched| {
                class_masks
                    .iter()
                    .map(|&mask| match DayBands::build(sched, mask, &scan) {
                        Some(b) => *ids.entry(b).or_insert_with(|| {
                            days.push(b);
                            days.len() as u32 - 1
                        }),
                        None => NONE,
                    })
                    .collect()
            })
            .collect();
        BandTables {
            days: days.into(),
            by_schedule,
        }
    }
}
