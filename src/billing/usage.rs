//! Usage limits, the pure half (README, "Usage limits"): which period a unit counts in, how many
//! units an instance reserves at a time, how a reserved block is spent, and when an alert is due.
//! The database keeps one counter per payer, feature and period of the units handed out to
//! instances; an instance spends its block in memory. Nothing here reads a clock: `now` comes in.

pub use super::plans::MAX_UNITS;
use super::{
    dates::{civil_from_days, days_from_civil, DAY_MS},
    plans::Limit,
};

/// The most units one instance reserves at once for one payer and feature: what a crash can
/// strand. The database grants `1/BLOCK_FRACTION` of what remains, at least what the request
/// needs, at most this (`db::usage::reserve`), so blocks shrink to single units near the limit
/// and several instances cannot hold much between them.
pub const MAX_BLOCK: u64 = 1024;
pub const BLOCK_FRACTION: u64 = 32;

/// A billing period, `[start, end)` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

impl Period {
    /// Whole seconds from `now` until the period ends (the next reset), never negative.
    pub fn seconds_left(&self, now: i64) -> u64 {
        let ms = u64::try_from(self.end.saturating_sub(now)).unwrap_or(0);
        ms.div_ceil(1000)
    }
}

/// The period `now` counts in: the subscription item's period when there is one, carried forward
/// by its own length when `now` is past its end (a renewal whose webhook has not come yet); else
/// the calendar month in UTC.
pub fn period_at(item: Option<(i64, i64)>, now: i64) -> Period {
    match item {
        Some((start, end)) if start < end && start <= now => {
            let len = end - start;
            let skipped = if now < end { 0 } else { (now - end) / len + 1 };
            let start = start + skipped * len;
            Period {
                start,
                end: start + len,
            }
        }
        _ => calendar_month(now),
    }
}

/// The period a payer's units count in: the period of the counter they were last counted in
/// (`last`), unless `current` (the period `now` falls in, [`period_at`]) is a **renewal** of it:
/// a period that begins at or after the end of `last`. Anything else — a plan switch (a new item
/// with a new start), a trial extended, an end that moved — keeps counting in `last`'s counter
/// (same start), its end following the current item's. Evidence of a period wholly before
/// `last` does not move it back.
pub fn counting_period(last: Option<Period>, current: Period) -> Period {
    match last {
        Some(l) if current.start >= l.end => current,
        Some(l) if current.end <= l.start => l,
        Some(l) => Period {
            start: l.start,
            end: current.end,
        },
        None => current,
    }
}

/// The UTC calendar month containing `now`.
pub fn calendar_month(now: i64) -> Period {
    let (y, m, _) = civil_from_days(now.div_euclid(DAY_MS));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Period {
        start: days_from_civil(y, m, 1) * DAY_MS,
        end: days_from_civil(ny, nm, 1) * DAY_MS,
    }
}

/// The units a payer may spend this period: the plan's limit plus units an operator granted.
/// `None` is unlimited.
pub fn allowance(limit: Limit, granted: u64) -> Option<u64> {
    match limit {
        Limit::Unlimited => None,
        Limit::Units(n) => Some(n.saturating_add(granted)),
    }
}

/// Units this instance reserved for one payer, feature and period: `[next, end)` are unspent,
/// numbered as the payer's units of the period (1 is the period's first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub period: Period,
    /// The plan's limit the block was reserved under (`None` unlimited): under another limit
    /// (a plan change) its unspent units go back before a new block is taken.
    pub limit: Option<u64>,
    /// The plan's limit plus granted units, as the database answered with this block.
    pub allowance: Option<u64>,
    /// Units of the period the database had handed out (to every instance) with this block.
    pub handed_out: u64,
    /// How many units the block was handed out with.
    pub size: u64,
    pub next: u64,
    pub end: u64,
}

impl Block {
    pub fn unspent(&self) -> u64 {
        self.end.saturating_sub(self.next)
    }

    /// Whether this block can serve a request counted in `period` under the plan's `limit`.
    pub fn serves(&self, period: Period, limit: Option<u64>) -> bool {
        self.period == period && self.limit == limit
    }

    /// Whether the block's units belong to the counter of `period` (the same start): when the
    /// period's end moved or the limit changed they are given back to that counter, never lost.
    pub fn same_counter(&self, period: Period) -> bool {
        self.period.start == period.start
    }

    /// Whether to reserve the next block now, before this one runs out, so that no request
    /// waits for the database: half of it is spent, and it was not a single unit (near the
    /// limit, where a unit held ahead is a unit another instance cannot spend).
    pub fn wants_next(&self) -> bool {
        self.size > 1 && self.unspent().saturating_mul(2) <= self.size
    }

    /// Spends `units` from the block: the number of the last unit spent, or `None` (nothing
    /// spent) when fewer than `units` are left.
    pub fn take(&mut self, units: u64) -> Option<u64> {
        if units == 0 || self.unspent() < units {
            return None;
        }
        self.next += units;
        Some(self.next - 1)
    }
}

/// The thresholds that raise a usage alert, in percent of the allowance.
pub const ALERT_PERCENTS: [u8; 2] = [80, 100];

/// The alerts due once the payer's `last_unit`-th unit of the period has been spent: every
/// threshold at or below it (the database keeps one mail per threshold, so a later unit asking
/// again sends nothing twice). Unlimited features raise none; an allowance of 0 raises none
/// either (a plan without the feature is not a customer at their limit).
pub fn alerts_due(allowance: Option<u64>, last_unit: u64) -> Vec<u8> {
    let Some(a) = allowance.filter(|a| *a > 0) else {
        return Vec::new();
    };
    ALERT_PERCENTS
        .into_iter()
        .filter(|p| last_unit.saturating_mul(100) >= a.saturating_mul(u64::from(*p)))
        .collect()
}

/// How long a refusal at the limit is answered from memory before the database is asked again
/// (a grant, or units another instance gave back, are seen within this).
pub const REFUSAL_FRESH_MS: i64 = 500;

/// What an instance remembers of the database's last "no units left" for one counter: later
/// requests for the same period and limit are refused from it without a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub period: Period,
    pub limit: Option<u64>,
    pub allowance: Option<u64>,
    /// When the database said so (ms).
    pub at: i64,
}

impl Exhausted {
    /// Whether it speaks of requests counted in `period` under `limit` (a renewal or a plan
    /// change is a new question for the database).
    pub fn covers(&self, period: Period, limit: Option<u64>) -> bool {
        self.period == period && self.limit == limit
    }

    /// Whether it is recent enough to refuse without asking again.
    pub fn fresh(&self, now: i64) -> bool {
        now.saturating_sub(self.at) < REFUSAL_FRESH_MS
    }
}

/// Units left for the payer as one instance sees them: the allowance less what the database has
/// handed out, plus what this instance still holds. `None` when unlimited.
pub fn remaining(allowance: Option<u64>, handed_out: u64, held_here: u64) -> Option<u64> {
    allowance.map(|a| {
        a.saturating_sub(handed_out)
            .saturating_add(held_here)
            .min(a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-12-03T09:46:11Z
    const NOW: i64 = 1_796_291_171_000;

    fn utc(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * DAY_MS
    }

    #[test]
    fn without_an_item_the_period_is_the_utc_calendar_month() {
        assert_eq!(
            period_at(None, NOW),
            Period {
                start: utc(2026, 12, 1),
                end: utc(2027, 1, 1)
            }
        );
        let feb = calendar_month(utc(2028, 2, 29) + DAY_MS - 1);
        assert_eq!((feb.start, feb.end), (utc(2028, 2, 1), utc(2028, 3, 1)));
        let edge = calendar_month(utc(2027, 1, 1));
        assert_eq!(edge.start, utc(2027, 1, 1), "midnight starts the new month");
    }

    #[test]
    fn an_items_period_holds_and_rolls_forward_by_its_length() {
        let (s, e) = (utc(2026, 11, 20), utc(2026, 12, 20));
        assert_eq!(period_at(Some((s, e)), NOW), Period { start: s, end: e });
        assert_eq!(period_at(Some((s, e)), s), Period { start: s, end: e });
        let len = e - s;
        assert_eq!(
            period_at(Some((s, e)), e),
            Period {
                start: e,
                end: e + len
            },
            "the end belongs to the next period"
        );
        assert_eq!(
            period_at(Some((s, e)), e + 2 * len + 5),
            Period {
                start: e + 2 * len,
                end: e + 3 * len
            }
        );
        // A period that has not started, or that makes no sense, is not trusted.
        assert_eq!(
            period_at(Some((NOW + 1, NOW + 10)), NOW),
            calendar_month(NOW)
        );
        assert_eq!(period_at(Some((s, s)), NOW), calendar_month(NOW));
        assert_eq!(period_at(Some((e, s)), NOW), calendar_month(NOW));
    }

    #[test]
    fn seconds_left_round_up_and_never_go_negative() {
        let p = Period {
            start: 0,
            end: 10_000,
        };
        assert_eq!(p.seconds_left(0), 10);
        assert_eq!(p.seconds_left(8_999), 2);
        assert_eq!(p.seconds_left(9_000), 1);
        assert_eq!(p.seconds_left(10_000), 0);
        assert_eq!(p.seconds_left(20_000), 0);
    }

    #[test]
    fn the_allowance_adds_grants_to_a_limit() {
        assert_eq!(allowance(Limit::Units(10), 5), Some(15));
        assert_eq!(allowance(Limit::Units(u64::MAX), 5), Some(u64::MAX));
        assert_eq!(allowance(Limit::Unlimited, 5), None);
    }

    #[test]
    fn a_block_spends_its_units_in_order_and_never_more() {
        let period = calendar_month(NOW);
        let mut b = Block {
            period,
            limit: Some(10),
            allowance: Some(12),
            handed_out: 9,
            size: 4,
            next: 4,
            end: 7,
        };
        assert!(!b.wants_next(), "3 of 4 left");
        assert_eq!(
            remaining(b.allowance, b.handed_out, b.unspent()),
            Some(6),
            "12 - 9 + 3 held here"
        );
        assert_eq!(b.unspent(), 3);
        assert_eq!(b.take(0), None, "nothing is not a spend");
        assert_eq!(b.take(2), Some(5));
        assert!(b.wants_next(), "half spent");
        assert_eq!(b.take(2), None, "one left");
        assert_eq!(b.unspent(), 1);
        assert_eq!(b.take(1), Some(6));
        assert_eq!(b.take(1), None);
        assert_eq!(b.unspent(), 0);
        assert!(b.serves(period, Some(10)));
        assert!(!b.serves(period, Some(11)), "an upgrade's allowance");
        assert!(!b.serves(period, None));
        let next = Period {
            start: period.end,
            end: period.end + 1,
        };
        assert!(!b.serves(next, Some(10)), "a renewal");
        let single = Block {
            size: 1,
            next: 5,
            end: 5,
            ..b
        };
        assert!(!single.wants_next(), "near the limit nothing is held ahead");
        let two = Block {
            size: 2,
            next: 4,
            end: 5,
            ..b
        };
        assert!(two.wants_next(), "one of two left");
        assert!(!Block { next: 3, ..two }.wants_next(), "both left");
    }

    #[test]
    fn alerts_fall_due_at_eighty_and_a_hundred_percent() {
        assert!(alerts_due(Some(10), 7).is_empty());
        assert_eq!(alerts_due(Some(10), 8), vec![80]);
        assert_eq!(alerts_due(Some(10), 9), vec![80]);
        assert_eq!(alerts_due(Some(10), 10), vec![80, 100]);
        assert_eq!(
            alerts_due(Some(7), 5),
            Vec::<u8>::new(),
            "5.6 is the 80% unit"
        );
        assert_eq!(alerts_due(Some(7), 6), vec![80]);
        assert!(alerts_due(None, 1 << 50).is_empty());
        assert!(alerts_due(Some(0), 0).is_empty());
        assert_eq!(alerts_due(Some(u64::MAX), u64::MAX), vec![80, 100]);
    }

    #[test]
    fn remaining_counts_what_this_instance_holds() {
        assert_eq!(remaining(Some(100), 40, 0), Some(60));
        assert_eq!(remaining(Some(100), 40, 8), Some(68));
        assert_eq!(remaining(Some(100), 120, 0), Some(0), "a lowered limit");
        assert_eq!(
            remaining(Some(100), 0, 500),
            Some(100),
            "never above the allowance"
        );
        assert_eq!(remaining(None, 40, 8), None);
    }

    fn p(start: i64, end: i64) -> Period {
        Period { start, end }
    }

    #[test]
    fn only_a_renewal_starts_a_new_counter() {
        let counted = p(100, 200);
        assert_eq!(
            counting_period(None, p(150, 250)),
            p(150, 250),
            "the first counter"
        );
        assert_eq!(
            counting_period(Some(counted), p(200, 300)),
            p(200, 300),
            "a period starting at the end is a renewal"
        );
        assert_eq!(counting_period(Some(counted), p(260, 300)), p(260, 300));
        assert_eq!(
            counting_period(Some(counted), p(199, 230)),
            p(100, 230),
            "a plan switch a moment before the end keeps counting, to the new item's end"
        );
        assert_eq!(
            counting_period(Some(counted), p(100, 260)),
            p(100, 260),
            "a trial extended: same counter, the end moved"
        );
        assert_eq!(
            counting_period(Some(counted), p(100, 150)),
            p(100, 150),
            "an end moved earlier"
        );
        assert_eq!(
            counting_period(Some(counted), p(50, 120)),
            p(100, 120),
            "an overlapping older period keeps the counter"
        );
        assert_eq!(
            counting_period(Some(counted), p(50, 100)),
            counted,
            "evidence wholly before the counter does not move it back"
        );
        assert_eq!(counting_period(Some(counted), p(50, 101)), p(100, 101));
    }

    #[test]
    fn a_remembered_refusal_speaks_for_its_period_and_limit_for_half_a_second() {
        let period = p(100, 200);
        let e = Exhausted {
            period,
            limit: Some(20),
            allowance: Some(25),
            at: 1_000,
        };
        assert!(e.covers(period, Some(20)));
        assert!(!e.covers(period, Some(50)), "a plan change asks again");
        assert!(!e.covers(period, None));
        assert!(!e.covers(p(100, 201), Some(20)), "a moved end asks again");
        assert!(!e.covers(p(200, 300), Some(20)), "a renewal asks again");
        assert!(e.fresh(1_000));
        assert!(e.fresh(1_000 + REFUSAL_FRESH_MS - 1));
        assert!(!e.fresh(1_000 + REFUSAL_FRESH_MS));
        assert!(
            e.fresh(900),
            "a clock that stepped back is not a reason to ask"
        );
    }

    #[test]
    fn a_block_belongs_to_the_counter_of_its_start() {
        let b = Block {
            period: p(100, 200),
            limit: Some(10),
            allowance: Some(10),
            handed_out: 4,
            size: 4,
            next: 1,
            end: 5,
        };
        assert!(b.same_counter(p(100, 300)));
        assert!(!b.same_counter(p(101, 200)));
        assert!(
            !b.serves(p(100, 300), Some(10)),
            "the end moved: given back, not spent"
        );
    }

    proptest! {
        /// Whatever the order of evidence, the counter never starts after the current period
        /// unless it is a renewal, and it always ends where the current period ends.
        #[test]
        fn counting_keeps_the_start_unless_renewed(
            ls in 0i64..1000, ll in 1i64..500, cs in 0i64..2000, cl in 1i64..500
        ) {
            let last = p(ls, ls + ll);
            let current = p(cs, cs + cl);
            let c = counting_period(Some(last), current);
            prop_assert!(c.start < c.end);
            if cs >= last.end {
                prop_assert_eq!(c, current);
            } else if current.end <= ls {
                prop_assert_eq!(c, last);
            } else {
                prop_assert_eq!(c, p(ls, current.end));
            }
        }

        #[test]
        fn the_calendar_month_contains_now_and_starts_on_the_first(now in -(1i64 << 45)..(1i64 << 45)) {
            let p = calendar_month(now);
            prop_assert!(p.start <= now && now < p.end);
            prop_assert_eq!(civil_from_days(p.start / DAY_MS).2, 1);
            prop_assert_eq!(civil_from_days(p.end / DAY_MS).2, 1);
            prop_assert!((28..=31).contains(&((p.end - p.start) / DAY_MS)));
        }

        #[test]
        fn the_period_always_contains_now(
            start in 0i64..(1 << 42), len in 1i64..(1 << 36), at in 0i64..(1 << 43)
        ) {
            let p = period_at(Some((start, start + len)), at);
            prop_assert!(p.start <= at && at < p.end, "{p:?} {at}");
            if at >= start {
                prop_assert_eq!(p.end - p.start, len);
                prop_assert_eq!((p.start - start) % len, 0);
            }
        }
    }
}
