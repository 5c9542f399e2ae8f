//! Clerk event payloads, read leniently, turned into domain changes.
//!
//! Clerk's own examples disagree on details (seconds vs milliseconds in `timestamp`,
//! `subscription_item` vs `commerce_subscription_item`, `""` for "no organization"), so fields
//! are read from the JSON by name with fallbacks rather than through strict structs.

use serde_json::Value;

use crate::billing::{
    kinds::HANDLED_EVENT_TYPES,
    payments::{self, Card, PaymentAttempt, PaymentStatus},
    subscription::{ItemPayer, PayerKind},
    ItemState, Standing, Status,
};

/// The envelope field reconciliation sets on a correction it inferred (an item Clerk no longer
/// lists, recorded `ended`): the state rests on no word of Clerk's, and one overrides it.
pub const INFERRED: &str = "plangate_inferred";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("body is not a JSON object")]
    NotJson,
    #[error("event has no `type`")]
    NoType,
    #[error("event has no `data` object")]
    NoData,
    #[error("event data is missing `{0}`")]
    Missing(&'static str),
}

impl EventError {
    /// A short label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            EventError::NotJson => "not_json",
            EventError::NoType => "no_type",
            EventError::NoData => "no_data",
            EventError::Missing(_) => "missing_field",
        }
    }
}

/// A parsed event envelope.
#[derive(Debug, Clone)]
pub struct ClerkEvent {
    pub event_type: String,
    /// Event time in ms (Clerk sends seconds in some payloads and ms in others).
    pub timestamp_ms: Option<i64>,
    /// The whole payload; for the types this app handles, `changes` checks `data` is an object.
    pub raw: Value,
}

/// Whether an event type's data changes state: the listed types
/// (`billing::kinds::HANDLED_EVENT_TYPES`), and any later `subscription.<x>` or
/// `subscriptionItem.<x>` Clerk adds (its item carries its status). Any other type is only
/// recorded.
pub fn is_handled(event_type: &str) -> bool {
    HANDLED_EVENT_TYPES.contains(&event_type)
        || event_type
            .strip_prefix("subscription.")
            .or_else(|| event_type.strip_prefix("subscriptionItem."))
            .is_some_and(|rest| !rest.is_empty())
}

// Nearly every change is an item, and a change lives only while its delivery is applied: boxing
// the item would cost an allocation per change to save a few bytes on the rare user change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    User {
        id: String,
        email: Option<String>,
        deleted: bool,
        event_at: i64,
    },
    Item(ItemState),
    /// A payment attempt for the billing page's history.
    Payment(PaymentAttempt),
    /// `subscriptionItem.freeTrialEnding`: the trial reminder for this item (its state is
    /// applied by the `Item` change of the same event).
    TrialEnding(ItemState, Interval),
}

/// Event times are told apart by size: below 10^12 seconds (10^12 s is year 33658), below 10^14
/// milliseconds (years 2001–5138), below 10^17 microseconds, above that nanoseconds. A unit slip
/// upstream (an `updated_at` in microseconds) thus still reads as the right instant.
pub fn to_ms(t: i64) -> i64 {
    match t.unsigned_abs() {
        0..1_000_000_000_000 => t.saturating_mul(1000),
        1_000_000_000_000..100_000_000_000_000 => t,
        100_000_000_000_000..100_000_000_000_000_000 => t / 1000,
        _ => t / 1_000_000,
    }
}

/// How far ahead of the verified `svix-timestamp` an event may say it happened. Past that, its
/// times are clamped to the signed timestamp: a wrong clock upstream must not make a state look
/// newer than every later event (which would pin it: a cancellation would be "stale" forever).
pub const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;

/// `t`, or the signed time when `t` is further ahead of it than [`MAX_AHEAD_MS`].
fn clamp(t: i64, signed_at_ms: i64) -> i64 {
    if t > signed_at_ms.saturating_add(MAX_AHEAD_MS) {
        signed_at_ms
    } else {
        t
    }
}

pub fn parse(body: &[u8]) -> Result<ClerkEvent, EventError> {
    let raw: Value = serde_json::from_slice(body).map_err(|_| EventError::NotJson)?;
    if !raw.is_object() {
        return Err(EventError::NotJson);
    }
    let event_type = raw
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(EventError::NoType)?
        .to_string();
    let timestamp_ms = raw.get("timestamp").and_then(Value::as_i64).map(to_ms);
    Ok(ClerkEvent {
        event_type,
        timestamp_ms,
        raw,
    })
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn n(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64).map(to_ms)
}

fn payer_of(p: &Value) -> Option<ItemPayer> {
    let user_id = s(p, "user_id").map(str::to_string);
    let email = s(p, "email").map(str::to_string);
    if let Some(org) = s(p, "organization_id") {
        return Some(ItemPayer {
            kind: PayerKind::Org,
            id: org.to_string(),
            user_id,
            email,
        });
    }
    user_id.clone().map(|id| ItemPayer {
        kind: PayerKind::User,
        id,
        user_id,
        email,
    })
}

/// How often an item is billed: `interval` (webhooks) or `plan_period` (Backend API),
/// `month` or `annual`. Anything else is read as monthly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interval {
    #[default]
    Month,
    Annual,
}

impl Interval {
    pub fn of(d: &Value) -> Interval {
        match s(d, "interval").or_else(|| s(d, "plan_period")) {
            Some("annual" | "year" | "yearly") => Interval::Annual,
            _ => Interval::Month,
        }
    }
}

/// The history row of a payment attempt: `None` when the event names no attempt id, payer or
/// known status (the delivery's other effects still apply). Only codes, a brand and four digits
/// are taken from it; the failure's free text never is.
fn payment_of(d: &Value, at: i64, signed_at_ms: i64) -> Option<PaymentAttempt> {
    let id = s(d, "id")?.to_string();
    let payer = d.get("payer").and_then(payer_of)?;
    let status = PaymentStatus::parse(s(d, "status")?)?;
    let event_at = n(d, "updated_at")
        .map(|u| clamp(u, signed_at_ms))
        .map_or(at, |u| u.max(at));
    let happened = match status {
        PaymentStatus::Paid => n(d, "paid_at"),
        PaymentStatus::Failed => n(d, "failed_at"),
        PaymentStatus::Pending => None,
    }
    .or_else(|| n(d, "updated_at"))
    .or_else(|| n(d, "created_at"))
    .map_or(event_at, |t| clamp(t, signed_at_ms));
    let total = d.pointer("/totals/grand_total");
    let failed_code = match d.get("failed_reason") {
        Some(Value::Object(o)) => o
            .get("code")
            .and_then(Value::as_str)
            .and_then(payments::code),
        Some(Value::String(c)) => payments::code(c),
        _ => None,
    };
    let source = d.get("payment_source");
    let card = source.and_then(|p| {
        Some(Card {
            brand: payments::brand(s(p, "card_type")?)?,
            last4: payments::last4(s(p, "last4")?)?,
        })
    });
    Some(PaymentAttempt {
        id,
        payer,
        status,
        amount: total
            .and_then(|t| t.get("amount"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
        currency: total
            .and_then(|t| s(t, "currency"))
            .and_then(payments::currency)
            .unwrap_or_else(|| "USD".into()),
        charge_type: s(d, "charge_type").and_then(payments::code),
        at: happened,
        failed_code: failed_code.filter(|_| status == PaymentStatus::Failed),
        card,
        statement_id: s(d, "statement_id")
            .and_then(|x| crate::clerk_api::is_clerk_id(x).then(|| x.to_string())),
        event_at,
    })
}

fn item_of(
    item: &Value,
    payer: Option<&ItemPayer>,
    subscription_id: Option<&str>,
    event_at: i64,
) -> Result<ItemState, EventError> {
    let id = s(item, "id").ok_or(EventError::Missing("id"))?;
    let payer = item
        .get("payer")
        .and_then(payer_of)
        .or_else(|| payer.cloned())
        .ok_or(EventError::Missing("payer"))?;
    let plan = item.get("plan").unwrap_or(&Value::Null);
    let plan_slug = s(plan, "slug")
        .or_else(|| s(item, "plan_slug"))
        .ok_or(EventError::Missing("plan.slug"))?;
    let status = Status::parse(s(item, "status").ok_or(EventError::Missing("status"))?);
    // The item's own clock, when newer than the envelope's, is the better stamp.
    let event_at = n(item, "updated_at").map_or(event_at, |u| u.max(event_at));
    Ok(ItemState {
        id: id.to_string(),
        subscription_id: s(item, "subscription_id")
            .or(subscription_id)
            .map(str::to_string),
        payer,
        plan_slug: plan_slug.to_string(),
        plan_name: s(plan, "name").map(str::to_string),
        status,
        period_start: n(item, "period_start"),
        period_end: n(item, "period_end"),
        is_free_trial: item
            .get("is_free_trial")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        canceled_at: n(item, "canceled_at"),
        past_due_at: n(item, "past_due_at"),
        event_at,
        inferred: false,
        standing: Default::default(),
    })
}

fn primary_email(data: &Value) -> Option<String> {
    let primary = s(data, "primary_email_address_id");
    let list = data.get("email_addresses").and_then(Value::as_array)?;
    list.iter()
        .find(|e| primary.is_some() && s(e, "id") == primary)
        .or_else(|| list.first())
        .and_then(|e| s(e, "email_address"))
        .map(str::to_string)
}

impl ClerkEvent {
    pub fn data(&self) -> &Value {
        &self.raw["data"]
    }

    /// The event time used for ordering: the envelope's timestamp, else the data's `updated_at`,
    /// else the delivery's signed timestamp; never later than the signed time allows.
    pub fn event_at(&self, signed_at_ms: i64) -> i64 {
        clamp(self.claimed_at(signed_at_ms), signed_at_ms)
    }

    fn claimed_at(&self, signed_at_ms: i64) -> i64 {
        self.timestamp_ms
            .or_else(|| n(self.data(), "updated_at"))
            .unwrap_or(signed_at_ms)
    }

    /// The user or organization the event is about (for the events page).
    pub fn subject_id(&self) -> Option<String> {
        let d = self.data();
        if self.event_type.starts_with("user.") {
            return s(d, "id").map(str::to_string);
        }
        d.get("payer").and_then(payer_of).map(|p| p.id)
    }

    /// The state changes this event asks for; empty for events that only get recorded. Times
    /// further ahead of `signed_at_ms` (the verified `svix-timestamp`) than [`MAX_AHEAD_MS`]
    /// are clamped to it, with a warning.
    pub fn changes(&self, signed_at_ms: i64) -> Result<Vec<Change>, EventError> {
        let mut changes = self.claimed_changes(signed_at_ms)?;
        let mut clamped = None;
        let mut fix = |t: &mut i64| {
            let c = clamp(*t, signed_at_ms);
            if c != *t {
                clamped = Some(*t);
                *t = c;
            }
        };
        // Only reconciliation writes this (a correction for an item Clerk stopped listing).
        let inferred = self.raw.get(INFERRED) == Some(&Value::Bool(true));
        for change in &mut changes {
            match change {
                Change::User { event_at, .. } => fix(event_at),
                Change::Payment(p) => {
                    fix(&mut p.event_at);
                    fix(&mut p.at);
                }
                Change::TrialEnding(item, _) => fix(&mut item.event_at),
                Change::Item(item) => {
                    fix(&mut item.event_at);
                    item.past_due_at.iter_mut().for_each(&mut fix);
                    item.canceled_at.iter_mut().for_each(&mut fix);
                    item.inferred = inferred;
                    // What this state says about payment; the database merges it with the rest.
                    item.standing =
                        Standing::evidence(item.status, item.is_free_trial, item.event_at);
                }
            }
        }
        if let Some(claimed_ms) = clamped {
            tracing::warn!(
                event_type = %self.event_type,
                claimed_ms,
                signed_at_ms,
                "event time is ahead of the signed svix-timestamp; clamped to it"
            );
        }
        Ok(changes)
    }

    fn claimed_changes(&self, signed_at_ms: i64) -> Result<Vec<Change>, EventError> {
        if !is_handled(&self.event_type) {
            return Ok(vec![]);
        }
        let d = self.data();
        if !d.is_object() {
            return Err(EventError::NoData);
        }
        let at = self.claimed_at(signed_at_ms);
        let kind = self.event_type.as_str();
        match kind {
            "user.created" | "user.updated" => Ok(vec![Change::User {
                id: s(d, "id").ok_or(EventError::Missing("id"))?.to_string(),
                email: primary_email(d),
                deleted: false,
                event_at: n(d, "updated_at").map_or(at, |u| u.max(at)),
            }]),
            "user.deleted" => Ok(vec![Change::User {
                id: s(d, "id").ok_or(EventError::Missing("id"))?.to_string(),
                email: None,
                deleted: true,
                event_at: at,
            }]),
            _ if kind.starts_with("subscription.") => {
                let payer = d.get("payer").and_then(payer_of);
                let sub_id = s(d, "id");
                let items = d
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or(EventError::Missing("items"))?;
                items
                    .iter()
                    .map(|i| item_of(i, payer.as_ref(), sub_id, at).map(Change::Item))
                    .collect()
            }
            _ if kind.starts_with("subscriptionItem.") => {
                let item = item_of(d, None, None, at)?;
                Ok(if kind == "subscriptionItem.freeTrialEnding" {
                    let interval = Interval::of(d);
                    vec![
                        Change::Item(item.clone()),
                        Change::TrialEnding(item, interval),
                    ]
                } else {
                    vec![Change::Item(item)]
                })
            }
            "paymentAttempt.created" | "paymentAttempt.updated" => {
                let payment = payment_of(d, at, signed_at_ms).map(Change::Payment);
                if s(d, "status") != Some("failed") {
                    return Ok(payment.into_iter().collect());
                }
                // A failed charge makes every item it was for past due, as of the failure.
                let payer = d.get("payer").and_then(payer_of);
                let failed_at = n(d, "failed_at")
                    .or_else(|| n(d, "updated_at"))
                    .unwrap_or(at);
                let at = at.max(failed_at);
                let items = d
                    .get("subscription_items")
                    .and_then(Value::as_array)
                    .ok_or(EventError::Missing("subscription_items"))?;
                payment
                    .into_iter()
                    .map(Ok)
                    .chain(items.iter().map(|i| {
                        let mut item = item_of(i, payer.as_ref(), None, at)?;
                        item.status = Status::PastDue;
                        item.past_due_at = item.past_due_at.or(Some(failed_at));
                        item.event_at = at;
                        Ok(Change::Item(item))
                    }))
                    .collect()
            }
            _ => Ok(vec![]),
        }
    }

    /// Why the payment failed, for the mail: told from `failed_reason`'s code alone (the
    /// issuer's free text is never kept or mailed), `None` without a plain code.
    pub fn failure_code(&self) -> Option<String> {
        match self.data().get("failed_reason") {
            Some(Value::String(c)) => payments::code(c),
            Some(Value::Object(o)) => o
                .get("code")
                .and_then(Value::as_str)
                .and_then(payments::code),
            _ => None,
        }
    }

    pub fn amount_formatted(&self) -> Option<String> {
        self.data()
            .pointer("/totals/grand_total/amount_formatted")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_types_are_handled_and_others_only_recorded() {
        for t in HANDLED_EVENT_TYPES {
            assert!(is_handled(t), "{t}");
        }
        assert!(
            is_handled("subscriptionItem.somethingNew"),
            "a later item event"
        );
        for t in [
            "email.created",
            "paymentAttempt.deleted",
            "subscription.",
            "subscriptionItem.",
            "user.somethingElse",
            "organization.created",
            "",
        ] {
            assert!(!is_handled(t), "{t}");
        }
    }

    fn example(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/clerk/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// A signed time after every example's own clock.
    const SIGNED: i64 = 1_800_000_000_000;

    #[test]
    fn seconds_and_milliseconds_are_both_read_as_milliseconds() {
        assert_eq!(to_ms(1_716_883_200), 1_716_883_200_000);
        assert_eq!(to_ms(1_716_883_200_000), 1_716_883_200_000);
    }

    #[test]
    fn microseconds_and_nanoseconds_are_read_as_milliseconds_too() {
        assert_eq!(to_ms(1_716_883_200_000_000), 1_716_883_200_000);
        assert_eq!(to_ms(1_716_883_200_000_000_000), 1_716_883_200_000);
        assert_eq!(
            to_ms(99_999_999_999_999),
            99_999_999_999_999,
            "ms up to year 5138"
        );
        assert_eq!(
            to_ms(100_000_000_000_000),
            100_000_000_000,
            "µs from 1973 on"
        );
        assert_eq!(to_ms(999_999_999_999), 999_999_999_999_000, "seconds");
        assert_eq!(to_ms(i64::MAX), i64::MAX / 1_000_000);
        assert_eq!(to_ms(-5), -5000);
    }

    /// An item event with no envelope timestamp, whose item clock says `updated_at`.
    fn item_event(updated_at: i64, past_due_at: Option<i64>) -> ClerkEvent {
        let mut v: Value = serde_json::from_slice(&example("subscriptionItem.pastDue")).unwrap();
        v.as_object_mut().unwrap().remove("timestamp");
        v["data"]["updated_at"] = updated_at.into();
        v["data"]["past_due_at"] = past_due_at.map_or(Value::Null, Value::from);
        parse(v.to_string().as_bytes()).unwrap()
    }

    fn only_item(changes: Vec<Change>) -> ItemState {
        match changes.as_slice() {
            [Change::Item(item)] => item.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn times_ahead_of_the_signed_timestamp_are_clamped_to_it() {
        let signed = 1_716_883_200_000;
        let day = 86_400_000;
        let ev = item_event(signed + day, Some(signed + 2 * day));
        let item = only_item(ev.changes(signed).unwrap());
        assert_eq!(item.event_at, signed);
        assert_eq!(item.past_due_at, Some(signed));
        assert_eq!(ev.event_at(signed), signed, "the inbox row's time too");

        // Within the tolerance, the item's own clock stands.
        let ahead = signed + MAX_AHEAD_MS;
        let item = only_item(item_event(ahead, None).changes(signed).unwrap());
        assert_eq!(item.event_at, ahead);
        let item = only_item(item_event(ahead + 1, None).changes(signed).unwrap());
        assert_eq!(item.event_at, signed);
    }

    #[test]
    fn a_microsecond_updated_at_orders_as_the_instant_it_names() {
        let signed = 1_716_883_200_000;
        let item = only_item(item_event(signed * 1000, None).changes(signed).unwrap());
        assert_eq!(item.event_at, signed);
    }

    #[test]
    fn a_user_payer_with_empty_organization_is_a_user() {
        let ev = parse(&example("subscriptionItem.pastDue")).unwrap();
        let changes = ev.changes(SIGNED).unwrap();
        let Change::Item(item) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(item.payer.kind, PayerKind::User);
        assert_eq!(item.payer.id, "user_34D368EufHwugfYh4yyGNEheM0S");
        assert_eq!(item.status, Status::PastDue);
        assert_eq!(
            item.event_at, 1_716_969_600_000,
            "item clock is newer than the envelope"
        );
    }

    #[test]
    fn subscription_events_carry_their_items() {
        let ev = parse(&example("subscription.created")).unwrap();
        let changes = ev.changes(SIGNED).unwrap();
        assert_eq!(changes.len(), 1);
        let Change::Item(item) = &changes[0] else {
            panic!()
        };
        assert_eq!(item.plan_slug, "pro-plan");
        assert_eq!(
            item.subscription_id.as_deref(),
            Some("csub_2g7np7Hrk0SN6kj5EDMLDaKNL0S")
        );
    }

    #[test]
    fn a_paid_attempt_is_a_history_row_and_a_failed_one_also_marks_items_past_due() {
        let ev = parse(&example("paymentAttempt.updated")).unwrap();
        let changes = ev.changes(SIGNED).unwrap();
        assert_eq!(changes.len(), 1, "a paid attempt changes no item");
        let Change::Payment(p) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(p.id, "pa_2g7np7Hrk0SN6kj5EDMLDaKNL0S");
        assert_eq!(p.status, PaymentStatus::Paid);
        assert_eq!((p.amount, p.currency.as_str()), (2200, "USD"));
        assert_eq!(p.charge_type.as_deref(), Some("recurring"));
        assert_eq!(p.at, 1_716_883_500_000, "paid_at");
        assert_eq!(
            p.card,
            Some(Card {
                brand: "visa".into(),
                last4: "4242".into()
            })
        );
        assert_eq!(
            p.statement_id.as_deref(),
            Some("stmt_2g7np7Hrk0SN6kj5EDMLDaKNL0S")
        );
        assert_eq!(p.failed_code, None);
        assert_eq!(p.payer.id, "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S");

        let mut v: Value = serde_json::from_slice(&example("paymentAttempt.updated")).unwrap();
        v["data"]["status"] = "failed".into();
        v["data"]["failed_at"] = 1_716_883_600_000i64.into();
        v["data"]["failed_reason"] = serde_json::json!({"code": "card_declined", "message": "Card 4242 4242 4242 4242 exp 12/29 was declined"});
        let ev = parse(v.to_string().as_bytes()).unwrap();
        let changes = ev.changes(SIGNED).unwrap();
        let Change::Payment(p) = &changes[0] else {
            panic!()
        };
        assert_eq!(p.status, PaymentStatus::Failed);
        assert_eq!(p.failed_code.as_deref(), Some("card_declined"));
        assert_eq!(p.at, 1_716_883_600_000, "failed_at");
        assert!(
            !format!("{p:?}").contains("4242 4242"),
            "the message is never kept"
        );
        let Change::Item(item) = &changes[1] else {
            panic!()
        };
        assert_eq!(item.status, Status::PastDue);
        assert_eq!(item.past_due_at, Some(1_716_883_600_000));
        assert_eq!(item.payer.id, "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S");
    }

    #[test]
    fn a_payment_keeps_no_more_of_a_card_than_brand_and_last4() {
        let mut v: Value = serde_json::from_slice(&example("paymentAttempt.updated")).unwrap();
        v["data"]["payment_source"]["last4"] = "4242424242424242".into();
        v["data"]["failed_reason"] = "card 4242424242424242".into();
        v["data"]["status"] = "failed".into();
        let ev = parse(v.to_string().as_bytes()).unwrap();
        let Change::Payment(p) = &ev.changes(SIGNED).unwrap()[0] else {
            panic!()
        };
        assert_eq!(p.card, None, "a full number in last4 keeps nothing");
        assert_eq!(p.failed_code, None, "free text is not a code");
        // An attempt this app cannot place (no id, no payer, an unknown status) is no row, and
        // no error: the delivery's other effects still apply.
        for (k, bad) in [
            ("id", Value::Null),
            ("payer", Value::Null),
            ("status", "refunded".into()),
        ] {
            let mut v: Value = serde_json::from_slice(&example("paymentAttempt.updated")).unwrap();
            v["data"][k] = bad;
            let ev = parse(v.to_string().as_bytes()).unwrap();
            assert_eq!(ev.changes(SIGNED).unwrap(), vec![], "{k}");
        }
    }

    #[test]
    fn a_trial_ending_event_applies_the_item_and_asks_for_the_reminder() {
        let ev = parse(&example("subscriptionItem.freeTrialEnding")).unwrap();
        let changes = ev.changes(SIGNED).unwrap();
        assert_eq!(changes.len(), 2);
        let (Change::Item(a), Change::TrialEnding(b, _)) = (&changes[0], &changes[1]) else {
            panic!("{changes:?}")
        };
        assert_eq!(a, b);
        assert!(b.is_free_trial);
        assert_eq!(b.period_end, Some(1_719_561_600_000));
    }

    #[test]
    fn broken_envelopes_are_errors() {
        assert_eq!(parse(b"{not json").unwrap_err(), EventError::NotJson);
        assert_eq!(parse(b"[]").unwrap_err(), EventError::NotJson);
        assert_eq!(parse(br#"{"data":{}}"#).unwrap_err(), EventError::NoType);
    }

    /// A handled type without its data cannot be applied (a dead letter); any other type is
    /// only recorded, with or without data.
    #[test]
    fn a_handled_type_needs_its_data_and_an_unknown_type_does_not() {
        for t in [
            "user.created",
            "subscription.active",
            "subscriptionItem.ended",
            "paymentAttempt.updated",
        ] {
            let body = format!(r#"{{"type":"{t}","data":"nope"}}"#);
            let ev = parse(body.as_bytes()).unwrap();
            assert_eq!(ev.changes(SIGNED).unwrap_err(), EventError::NoData, "{t}");
        }
        for t in [
            "email.created",
            "subscription.",
            "session.ended",
            "paymentAttempt.deleted",
        ] {
            let body = format!(r#"{{"type":"{t}"}}"#);
            let ev = parse(body.as_bytes()).unwrap();
            assert_eq!(ev.changes(SIGNED).unwrap(), vec![], "{t}");
        }
    }
}
