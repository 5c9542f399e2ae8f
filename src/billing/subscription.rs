//! Subscription item state and the ordering rule that makes webhook application converge.
//!
//! Clerk delivers at least once and in any order. Each stored item carries an [`OrderKey`]: the
//! event time of the state it shows, then a status rank, then the delivery id. A change is
//! applied only when its key is greater, so the final state is the state of the greatest key,
//! whatever order the events came in (a last-writer-wins register with a total order).

use serde::{Deserialize, Serialize};

pub use super::kinds::{PayerKind, Status};
use super::standing::Standing;

/// Total order over the evidence behind a stored state. Serialised as a fixed-width string so
/// the database can compare keys atomically inside its upsert (`where old.key < new.key`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderKey(String);

/// The largest event time the fixed-width key holds (year 318857): "final, whatever comes".
const MAX_EVENT_AT: i64 = 9_999_999_999_999_999;

impl OrderKey {
    pub fn new(event_at_ms: i64, status_rank: u8, delivery_id: &str) -> Self {
        OrderKey(format!(
            "{:016}:{}:{}",
            event_at_ms.max(0),
            status_rank,
            delivery_id
        ))
    }

    pub fn for_item(event_at_ms: i64, status: Status, delivery_id: &str) -> Self {
        Self::new(event_at_ms, status.rank(), delivery_id)
    }

    /// Users: a deletion is final (Clerk never reuses a user id), so it outranks any update,
    /// whatever the clocks say; updates order by time.
    pub fn for_user(event_at_ms: i64, deleted: bool, delivery_id: &str) -> Self {
        if deleted {
            Self::new(MAX_EVENT_AT, 1, delivery_id)
        } else {
            // At the same time, rank 1 over 0 keeps the deletion ahead.
            Self::new(event_at_ms.min(MAX_EVENT_AT), 0, delivery_id)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(s: String) -> Self {
        OrderKey(s)
    }
}

/// Who pays for a subscription item, as the item records it: the payer, and the user and
/// address behind it (for mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPayer {
    /// `user` or `org`.
    pub kind: PayerKind,
    pub id: String,
    /// The user behind the payer, for mail; present for user payers and usually for orgs.
    pub user_id: Option<String>,
    pub email: Option<String>,
}

impl ItemPayer {
    /// The payer itself, without the details kept for mail.
    pub fn payer(&self) -> super::Payer {
        super::Payer {
            kind: self.kind,
            id: self.id.clone(),
        }
    }
}

/// The state of one subscription item as the webhooks last described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemState {
    pub id: String,
    pub subscription_id: Option<String>,
    pub payer: ItemPayer,
    pub plan_slug: String,
    pub plan_name: Option<String>,
    pub status: Status,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub is_free_trial: bool,
    pub canceled_at: Option<i64>,
    pub past_due_at: Option<i64>,
    /// Event time (ms) of the evidence this state comes from.
    pub event_at: i64,
    /// This state was inferred, not seen: reconciliation recorded the item `ended` because
    /// Clerk stopped listing it. Clerk's own word on the item (a later answer that lists it)
    /// overrides it whatever the times say.
    #[serde(default)]
    pub inferred: bool,
    /// Whether the item's period was paid, from every piece of evidence about it.
    #[serde(default)]
    pub standing: Standing,
}

impl ItemState {
    /// Whether this state can grant access: active, past due, or canceled with time left in a
    /// period that was paid.
    pub fn is_live(&self, now_ms: i64) -> bool {
        match self.status {
            Status::Active | Status::PastDue => true,
            Status::Canceled => {
                self.period_end.is_some_and(|end| end > now_ms) && !self.standing.unpaid()
            }
            _ => false,
        }
    }

    /// What this state says about payment, merged with what was known before it.
    pub fn with_standing_from(mut self, previous: Standing) -> ItemState {
        self.standing = previous.merge(Standing::evidence(
            self.status,
            self.is_free_trial,
            self.event_at,
        ));
        self
    }

    /// Whether `other` says something different about what the payer has: plan, status,
    /// periods, trial or cancellation (payer details and evidence times aside).
    pub fn differs_from(&self, other: &ItemState) -> bool {
        self.plan_slug != other.plan_slug
            || self.status != other.status
            || self.period_start != other.period_start
            || self.period_end != other.period_end
            || self.is_free_trial != other.is_free_trial
            || self.canceled_at != other.canceled_at
    }

    /// Whether moving from `previous` to this state is a payment failure the payer should hear
    /// about (once: later past-due evidence for the same episode is not a new transition).
    pub fn starts_past_due_episode(&self, previous: Option<&ItemState>) -> bool {
        self.status == Status::PastDue && previous.is_none_or(|p| p.status != Status::PastDue)
    }
}

/// Whether the Backend API's `api` state should be offered as a correction of `stored`: it
/// is unknown here, or it differs and its evidence is not older, or the stored state was only
/// inferred. (The writer's ordering rule still decides under the row lock; this only spares
/// the inbox rows that would be stale.)
pub fn needs_correction(stored: Option<&ItemState>, api: &ItemState) -> bool {
    match stored {
        None => true,
        Some(s) => api.differs_from(s) && (api.event_at >= s.event_at || s.inferred),
    }
}

/// The event time a correction from an answer that lists the item carries: the item's own
/// `updated_at`, unless the stored state was only inferred, which Clerk's word overrides (the
/// answer is Clerk's state as of the request, after the inference).
pub fn listed_event_at(stored: Option<&ItemState>, updated_at: i64) -> i64 {
    match stored {
        Some(s) if s.inferred => updated_at.max(s.event_at.saturating_add(1)),
        _ => updated_at,
    }
}

/// The payer's plan now: the current item, when it is one that can grant access. What the
/// pricing page marks as "your plan" and what the demo issuer puts in a token's `pla`.
pub fn current_plan(items: &[ItemState], now_ms: i64) -> Option<&ItemState> {
    current_item(items, now_ms).filter(|i| i.is_live(now_ms))
}

/// Picks the item that describes a payer now: one that can grant access (active, past due,
/// canceled but still in period) before anything else, newest evidence first.
pub fn current_item(items: &[ItemState], now_ms: i64) -> Option<&ItemState> {
    items
        .iter()
        .filter(|i| i.is_live(now_ms))
        .max_by_key(|i| i.event_at)
        .or_else(|| {
            items
                .iter()
                .filter(|i| i.status != Status::Upcoming)
                .max_by_key(|i| i.event_at)
        })
        .or_else(|| items.iter().max_by_key(|i| i.event_at))
}

/// The trial end a `freeTrialEnding` reminder may mail about, if any (README, "Billing
/// page"): the reminder's item is in a trial that has not ended by `now`, and the stored state
/// (newest evidence, after the reminder's own state was applied under the ordering rule) still
/// shows that same trial, active. A reminder that arrives after the trial was canceled,
/// converted to paid, extended (its own reminder comes) or ended sends nothing.
pub fn reminder_due(stored: Option<&ItemState>, reminder: &ItemState, now: i64) -> Option<i64> {
    let end = reminder.period_end.filter(|_| reminder.is_free_trial)?;
    let still = stored.is_some_and(|s| {
        s.is_free_trial && s.status == Status::Active && s.period_end == Some(end)
    });
    (end > now && still).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_field_of_what_the_payer_has_is_a_difference() {
        let a = item("csub_item_1", Status::Active, 10, Some(2));
        assert!(!a.differs_from(&a.clone()));
        let mut later = a.clone();
        later.event_at = 99;
        later.payer.email = Some("x@example.com".into());
        later.plan_name = Some("Pro".into());
        later.past_due_at = Some(5);
        assert!(
            !later.differs_from(&a),
            "evidence times and payer details are no difference"
        );
        let changes: [fn(&mut ItemState); 6] = [
            |i| i.plan_slug = "team".into(),
            |i| i.status = Status::Ended,
            |i| i.period_start = Some(7),
            |i| i.period_end = None,
            |i| i.is_free_trial = true,
            |i| i.canceled_at = Some(3),
        ];
        for (n, change) in changes.iter().enumerate() {
            let mut b = a.clone();
            change(&mut b);
            assert!(b.differs_from(&a), "change {n}");
            assert!(a.differs_from(&b), "change {n}, the other way");
        }
    }

    #[test]
    fn a_correction_is_offered_only_for_new_or_newer_different_state() {
        let stored = item("csub_item_1", Status::Active, 1_000, Some(2));
        assert!(needs_correction(None, &stored), "unknown here");
        assert!(
            !needs_correction(Some(&stored), &stored.clone()),
            "same state"
        );
        assert!(
            needs_correction(
                Some(&stored),
                &item("csub_item_1", Status::Ended, 2_000, Some(2))
            ),
            "newer and different"
        );
        assert!(
            needs_correction(
                Some(&stored),
                &item("csub_item_1", Status::Ended, 1_000, Some(2))
            ),
            "as new and different"
        );
        assert!(
            !needs_correction(
                Some(&stored),
                &item("csub_item_1", Status::Ended, 999, Some(2))
            ),
            "older API state never overwrites a newer webhook"
        );
        assert!(
            !needs_correction(
                Some(&stored),
                &item("csub_item_1", Status::Active, 5_000, Some(2))
            ),
            "newer, same"
        );
    }

    #[test]
    fn order_keys_compare_by_time_then_status_then_delivery() {
        let a = OrderKey::for_item(1_000, Status::Ended, "msg_a");
        let b = OrderKey::for_item(2_000, Status::Active, "msg_b");
        assert!(a < b, "a later event wins whatever its status");
        let c = OrderKey::for_item(2_000, Status::Canceled, "msg_a");
        assert!(b < c, "same millisecond: further along the lifecycle wins");
        let deleted = OrderKey::for_user(1, true, "msg_a");
        assert!(
            OrderKey::for_user(i64::MAX, false, "msg_z") < deleted,
            "deletion is final"
        );
        // Fixed width: 10 < 9 numerically must hold as strings too.
        assert!(
            OrderKey::for_item(9, Status::Active, "x")
                < OrderKey::for_item(10, Status::Active, "x")
        );
    }

    #[test]
    fn unknown_status_strings_are_unknown_not_active() {
        assert_eq!(Status::parse("paused"), Status::Unknown);
        assert_eq!(Status::parse("past_due"), Status::PastDue);
        assert_eq!(Status::PastDue.as_str(), "past_due");
    }

    #[test]
    fn every_status_reads_back_as_itself() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), s, "{s:?}");
        }
        assert_eq!(Status::Unknown.as_str(), "unknown");
        assert_eq!(
            Status::parse("Active"),
            Status::Unknown,
            "exact spelling only"
        );
    }

    #[test]
    fn within_one_millisecond_the_later_lifecycle_state_wins() {
        let lifecycle = [
            Status::Unknown,
            Status::Upcoming,
            Status::Incomplete,
            Status::Active,
            Status::PastDue,
            Status::Canceled,
            Status::Abandoned,
            Status::Ended,
        ];
        for (i, a) in lifecycle.iter().enumerate() {
            for b in &lifecycle[i + 1..] {
                assert!(
                    OrderKey::for_item(5, *a, "m") < OrderKey::for_item(5, *b, "m"),
                    "{a:?} < {b:?}"
                );
            }
        }
        assert!(
            OrderKey::for_item(5, Status::Active, "msg_a")
                < OrderKey::for_item(5, Status::Active, "msg_b"),
            "then the delivery id"
        );
    }

    #[test]
    fn keys_store_and_read_back_and_negative_times_count_as_zero() {
        let k = OrderKey::for_item(1_716_883_200_000, Status::Active, "msg_1");
        assert_eq!(OrderKey::from_stored(k.as_str().to_string()), k);
        assert_eq!(k.as_str(), "0001716883200000:3:msg_1");
        assert_eq!(
            OrderKey::for_item(-5, Status::Active, "m"),
            OrderKey::for_item(0, Status::Active, "m")
        );
        // An update stamped at the very end of time still ranks below a deletion.
        let late = OrderKey::for_user(MAX_EVENT_AT + 5, false, "z");
        assert!(late < OrderKey::for_user(0, true, "a"));
        assert!(late > OrderKey::for_user(MAX_EVENT_AT - 2, false, "z"));
        assert!(OrderKey::for_user(0, true, "a") < OrderKey::for_user(0, true, "b"));
    }

    #[test]
    fn payer_kinds_read_back_and_anything_else_is_a_user() {
        for k in [PayerKind::User, PayerKind::Org] {
            assert_eq!(PayerKind::parse(k.as_str()), k);
        }
        assert_eq!(PayerKind::Org.as_str(), "org");
        assert_eq!(PayerKind::User.as_str(), "user");
        assert_eq!(PayerKind::parse("organization"), PayerKind::User);
    }

    fn item(id: &str, status: Status, event_at: i64, period_end: Option<i64>) -> ItemState {
        ItemState {
            id: id.into(),
            subscription_id: None,
            payer: ItemPayer {
                kind: PayerKind::User,
                id: "user_1".into(),
                user_id: None,
                email: None,
            },
            plan_slug: "pro".into(),
            plan_name: None,
            status,
            period_start: None,
            period_end,
            is_free_trial: false,
            canceled_at: None,
            past_due_at: None,
            event_at,
            inferred: false,
            standing: Standing::default(),
        }
    }

    #[test]
    fn the_current_plan_is_the_current_item_only_while_it_can_grant_access() {
        let now = 1_000;
        let plan = |items: &[ItemState]| current_plan(items, now).map(|i| i.id.clone());
        assert_eq!(
            plan(&[item("a", Status::Active, 5, None)]).as_deref(),
            Some("a")
        );
        assert_eq!(
            plan(&[item("p", Status::PastDue, 5, None)]).as_deref(),
            Some("p")
        );
        let canceled = |end| item("c", Status::Canceled, 5, Some(end));
        assert_eq!(
            plan(&[canceled(now + 1)]).as_deref(),
            Some("c"),
            "time left"
        );
        assert_eq!(plan(&[canceled(now)]), None, "the period ends now");
        assert_eq!(plan(&[canceled(now - 1)]), None);
        // The current item of a payer whose subscription ended describes them, but is no plan.
        let ended = [item("e", Status::Ended, 9, None)];
        assert_eq!(current_item(&ended, now).map(|i| i.id.as_str()), Some("e"));
        assert_eq!(plan(&ended), None);
        assert_eq!(plan(&[]), None);
        // A live item wins over a newer one that cannot grant access.
        let items = [
            item("old", Status::Active, 1, None),
            item("new", Status::Ended, 9, None),
        ];
        assert_eq!(plan(&items).as_deref(), Some("old"));
    }

    #[test]
    fn a_payment_failure_is_news_only_when_the_item_was_not_past_due_already() {
        let due = item("i", Status::PastDue, 2, None);
        assert!(due.starts_past_due_episode(None));
        assert!(due.starts_past_due_episode(Some(&item("i", Status::Active, 1, None))));
        assert!(!due.starts_past_due_episode(Some(&item("i", Status::PastDue, 1, None))));
        let active = item("i", Status::Active, 2, None);
        assert!(!active.starts_past_due_episode(None));
        assert!(!active.starts_past_due_episode(Some(&due)));
    }

    #[test]
    fn the_current_item_is_the_newest_that_can_grant_access_else_the_newest_settled_one() {
        let now = 1_000;
        let id = |items: &[ItemState]| current_item(items, now).map(|i| i.id.clone());
        assert_eq!(id(&[]), None);
        // A live item beats a newer ended one; among live ones the newest wins.
        let items = [
            item("old_active", Status::Active, 10, None),
            item("new_active", Status::Active, 20, None),
            item("newest_ended", Status::Ended, 30, None),
        ];
        assert_eq!(id(&items).as_deref(), Some("new_active"));
        let items = [
            item("due", Status::PastDue, 10, None),
            item("ended", Status::Ended, 30, None),
        ];
        assert_eq!(id(&items).as_deref(), Some("due"));
        // Canceled is live only inside its period.
        let items = [
            item("canceled_in", Status::Canceled, 10, Some(now + 1)),
            item("ended", Status::Ended, 30, None),
        ];
        assert_eq!(id(&items).as_deref(), Some("canceled_in"));
        let items = [
            item("canceled_out", Status::Canceled, 40, Some(now)),
            item("ended", Status::Ended, 30, None),
        ];
        assert_eq!(
            id(&items).as_deref(),
            Some("canceled_out"),
            "newest settled"
        );
        let items = [
            item("canceled_none", Status::Canceled, 10, None),
            item("ended", Status::Ended, 30, None),
        ];
        assert_eq!(id(&items).as_deref(), Some("ended"));
        // Nothing live: the newest that is not upcoming, before any upcoming one.
        let items = [
            item("ended", Status::Ended, 10, None),
            item("abandoned", Status::Abandoned, 20, None),
            item("upcoming", Status::Upcoming, 30, None),
        ];
        assert_eq!(id(&items).as_deref(), Some("abandoned"));
        let items = [
            item("up_old", Status::Upcoming, 10, None),
            item("up_new", Status::Upcoming, 30, None),
        ];
        assert_eq!(id(&items).as_deref(), Some("up_new"));
    }

    #[test]
    fn a_reminder_mails_only_about_a_trial_still_running() {
        let now = 1_000_000;
        let mut trial = item("csub_item_1", Status::Active, 10, None);
        trial.is_free_trial = true;
        trial.period_end = Some(now + 5_000);
        assert_eq!(reminder_due(Some(&trial), &trial, now), Some(now + 5_000));
        assert_eq!(reminder_due(None, &trial, now), None, "nothing stored");
        assert_eq!(
            reminder_due(Some(&trial), &trial, now + 5_000),
            None,
            "over"
        );
        assert_eq!(
            reminder_due(Some(&trial), &trial, now + 4_999),
            Some(now + 5_000)
        );
        let canceled = ItemState {
            status: Status::Canceled,
            ..trial.clone()
        };
        assert_eq!(reminder_due(Some(&canceled), &trial, now), None);
        let paid = ItemState {
            is_free_trial: false,
            ..trial.clone()
        };
        assert_eq!(reminder_due(Some(&paid), &trial, now), None, "converted");
        let extended = ItemState {
            period_end: Some(now + 9_000),
            ..trial.clone()
        };
        assert_eq!(
            reminder_due(Some(&extended), &trial, now),
            None,
            "its own reminder comes"
        );
        let not_trial = ItemState {
            is_free_trial: false,
            ..trial.clone()
        };
        assert_eq!(reminder_due(Some(&trial), &not_trial, now), None);
        let no_end = ItemState {
            period_end: None,
            ..trial.clone()
        };
        assert_eq!(reminder_due(Some(&trial), &no_end, now), None);
    }

    #[test]
    fn a_listed_item_outranks_only_an_inferred_state() {
        let mut stored = item("csub_item_1", Status::Ended, 500, None);
        assert_eq!(
            listed_event_at(None, 100),
            100,
            "nothing stored: its own time"
        );
        assert_eq!(
            listed_event_at(Some(&stored), 100),
            100,
            "seen, not inferred"
        );
        assert_eq!(listed_event_at(Some(&stored), 900), 900);
        stored.inferred = true;
        assert_eq!(
            listed_event_at(Some(&stored), 100),
            501,
            "Clerk's word after an inference outranks it"
        );
        assert_eq!(listed_event_at(Some(&stored), 900), 900);
    }
}
