//! Payment standing: whether an item's current period was paid. Its status says where the
//! item is in its lifecycle; it does not say whether the period a cancellation lets run to its
//! end was ever paid. A renewal that fails makes the item past due; when the payer then
//! cancels, the item is `canceled` inside a period nobody paid for, and "canceled allows until
//! `period_end`" would give access back for that whole period (README, "Security model").
//!
//! So every piece of evidence about an item, applied or stale, also feeds two registers: the
//! latest payment failure (a past-due state) and the latest payment (an active, non-trial
//! state). Both only grow (a maximum), so they reach the same values whatever order the
//! deliveries come in; the item is unpaid while its latest failure is newer than its latest
//! payment, and an unpaid canceled item grants nothing.

use serde::{Deserialize, Serialize};

use super::kinds::Status;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Event time (ms) of the latest evidence that a charge for the item failed.
    pub failed_at: Option<i64>,
    /// Event time (ms) of the latest evidence that the item was paid for.
    pub paid_at: Option<i64>,
}

fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Standing {
    /// What one state of an item says about payment, as of its event time.
    pub fn evidence(status: Status, is_free_trial: bool, event_at: i64) -> Standing {
        match status {
            Status::PastDue => Standing {
                failed_at: Some(event_at),
                paid_at: None,
            },
            Status::Active if !is_free_trial => Standing {
                failed_at: None,
                paid_at: Some(event_at),
            },
            _ => Standing::default(),
        }
    }

    /// Both registers' latest values: commutative, associative and idempotent, so any order
    /// and any number of redeliveries give the same standing.
    pub fn merge(self, other: Standing) -> Standing {
        Standing {
            failed_at: later(self.failed_at, other.failed_at),
            paid_at: later(self.paid_at, other.paid_at),
        }
    }

    /// Whether a charge failed and no payment came after it.
    pub fn unpaid(&self) -> bool {
        match (self.failed_at, self.paid_at) {
            (Some(failed), Some(paid)) => failed > paid,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Whether this standing carries anything (a state without evidence changes nothing).
    pub fn is_empty(&self) -> bool {
        self.failed_at.is_none() && self.paid_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_failure_makes_the_item_unpaid_until_a_later_payment() {
        let failed = Standing::evidence(Status::PastDue, false, 100);
        assert_eq!(failed.failed_at, Some(100));
        assert!(failed.unpaid());
        let paid_before = Standing::evidence(Status::Active, false, 50);
        assert!(failed.merge(paid_before).unpaid(), "paid before it failed");
        let paid_same = Standing::evidence(Status::Active, false, 100);
        assert!(
            !failed.merge(paid_same).unpaid(),
            "a payment at the failure's millisecond settles it"
        );
        let paid_after = Standing::evidence(Status::Active, false, 150);
        assert!(!failed.merge(paid_after).unpaid());
        assert_eq!(failed.merge(paid_after).paid_at, Some(150));
        let failed_again = Standing::evidence(Status::PastDue, false, 200);
        assert!(failed.merge(paid_after).merge(failed_again).unpaid());
    }

    #[test]
    fn only_past_due_and_paid_active_states_are_evidence() {
        assert!(Standing::default().is_empty());
        assert!(!Standing::default().unpaid());
        assert!(
            Standing::evidence(Status::Active, true, 5).is_empty(),
            "a trial is not paid"
        );
        for s in [
            Status::Canceled,
            Status::Ended,
            Status::Upcoming,
            Status::Abandoned,
            Status::Incomplete,
            Status::Unknown,
        ] {
            assert!(Standing::evidence(s, false, 5).is_empty(), "{s:?}");
        }
        assert!(!Standing::evidence(Status::PastDue, false, 5).is_empty());
        assert!(!Standing::evidence(Status::Active, false, 5).is_empty());
        assert!(!Standing {
            failed_at: None,
            paid_at: Some(1)
        }
        .is_empty());
    }

    fn standing() -> impl Strategy<Value = Standing> {
        (
            proptest::option::of(0i64..1_000),
            proptest::option::of(0i64..1_000),
        )
            .prop_map(|(failed_at, paid_at)| Standing { failed_at, paid_at })
    }

    proptest! {
        /// Merging is order-free and idempotent: redeliveries and reordering change nothing.
        #[test]
        fn merging_is_commutative_associative_and_idempotent(
            a in standing(), b in standing(), c in standing()
        ) {
            prop_assert_eq!(a.merge(b), b.merge(a));
            prop_assert_eq!(a.merge(b).merge(c), a.merge(b.merge(c)));
            prop_assert_eq!(a.merge(a), a);
            prop_assert_eq!(a.merge(Standing::default()), a);
        }
    }
}
