//! Clerk-shaped event payloads, built the way Clerk sends them (same fields as the examples in
//! `tests/fixtures/clerk/`). Used by demo mode, `plangate trigger`, tests and benchmarks.

use serde_json::{json, Value};

pub const DAY_MS: i64 = 86_400_000;

/// What an event is about.
#[derive(Debug, Clone)]
pub struct Spec {
    pub user_id: String,
    pub email: String,
    /// Set when an organization pays.
    pub org_id: Option<String>,
    pub plan_slug: String,
    pub plan_name: String,
    pub amount_cents: u32,
    pub annual: bool,
    pub item_id: String,
    pub subscription_id: String,
    pub status: String,
    pub period_start: i64,
    pub period_end: Option<i64>,
    pub canceled_at: Option<i64>,
    pub past_due_at: Option<i64>,
    /// The item is in a free trial (no charge until `period_end`).
    pub free_trial: bool,
    /// Event time, ms.
    pub at: i64,
}

/// The event types this factory builds: every type the app handles (`billing::kinds`).
pub use crate::billing::kinds::HANDLED_EVENT_TYPES as TYPES;

/// The item status a `subscriptionItem.<x>` event carries.
pub fn status_for(event_type: &str) -> Option<&'static str> {
    crate::billing::Status::of_event_type(event_type).map(crate::billing::Status::as_str)
}

fn payer(s: &Spec) -> Value {
    json!({
        "object": "commerce_payer",
        "id": format!("cpayer_{}", s.org_id.as_deref().unwrap_or(&s.user_id)),
        "user_id": s.user_id,
        "first_name": "Demo",
        "last_name": "User",
        "email": s.email,
        "organization_id": s.org_id.clone().unwrap_or_default(),
        "organization_name": s.org_id.as_ref().map(|_| "Demo org").unwrap_or_default(),
        "image_url": "",
        "created_at": s.period_start,
        "updated_at": s.at,
    })
}

fn plan(s: &Spec) -> Value {
    json!({
        "id": format!("cplan_{}", s.plan_slug),
        "slug": s.plan_slug,
        "name": s.plan_name,
        "is_recurring": s.amount_cents > 0,
        "amount": s.amount_cents,
        "currency": "USD",
    })
}

fn item(s: &Spec, object: &str, status: &str, with_payer: bool) -> Value {
    let mut v = json!({
        "object": object,
        "id": s.item_id,
        "status": status,
        "is_free_trial": s.free_trial,
        "created_at": s.period_start,
        "updated_at": s.at,
        "period_start": s.period_start,
        "period_end": s.period_end,
        "canceled_at": s.canceled_at,
        "past_due_at": s.past_due_at,
        "interval": if s.annual { "annual" } else { "month" },
        "plan_id": format!("cplan_{}", s.plan_slug),
        "plan": plan(s),
        "subscription_id": s.subscription_id,
    });
    if with_payer {
        v["payer"] = payer(s);
    }
    v
}

fn envelope(event_type: &str, at: i64, data: Value) -> Value {
    json!({
        "object": "event",
        "type": event_type,
        "instance_id": "ins_plangate_demo",
        "timestamp": at / 1000,
        "data": data,
        "event_attributes": {"http_request": {"client_ip": "127.0.0.1", "user_agent": "plangate"}},
    })
}

/// Builds one event of `event_type` for `spec`.
pub fn build(event_type: &str, s: &Spec) -> Option<Value> {
    let data = match event_type {
        "user.created" | "user.updated" => json!({
            "object": "user",
            "id": s.user_id,
            "primary_email_address_id": format!("idn_{}", s.user_id),
            "email_addresses": [{"id": format!("idn_{}", s.user_id), "object": "email_address", "email_address": s.email}],
            "first_name": "Demo",
            "last_name": "User",
            "created_at": s.period_start,
            "updated_at": s.at,
        }),
        "user.deleted" => json!({"object": "user", "id": s.user_id, "deleted": true}),
        t if t.starts_with("subscription.") => {
            let status = match t {
                "subscription.pastDue" => "past_due",
                _ => s.status.as_str(),
            };
            json!({
                "object": "commerce_subscription",
                "id": s.subscription_id,
                "status": status,
                "active_at": s.period_start,
                "canceled_at": s.canceled_at,
                "created_at": s.period_start,
                "ended_at": null,
                "past_due_at": s.past_due_at,
                "updated_at": s.at,
                "payer_id": format!("cpayer_{}", s.user_id),
                "payer": payer(s),
                "items": [item(s, "commerce_subscription_item", status, false)],
            })
        }
        t if t.starts_with("subscriptionItem.") => {
            let status = status_for(t)?;
            let mut v = item(s, "subscription_item", status, true);
            if t == "subscriptionItem.freeTrialEnding" {
                v["is_free_trial"] = json!(true);
            }
            v
        }
        "paymentAttempt.created" | "paymentAttempt.updated" => {
            let failed = s.status == "failed";
            let status = if event_type == "paymentAttempt.created" {
                "pending"
            } else if failed {
                "failed"
            } else {
                "paid"
            };
            let amount = format!("${}.{:02}", s.amount_cents / 100, s.amount_cents % 100);
            json!({
                // One attempt per charge: created and updated share it, and a recovery settles
                // the attempt that failed (keyed by the failure's time).
                "id": format!("pa_{}_{}", s.item_id, s.past_due_at.unwrap_or(s.period_start)),
                "payment_id": format!("cpa_{}_{}", s.item_id, s.past_due_at.unwrap_or(s.period_start)),
                "status": status,
                "created_at": s.at,
                "updated_at": s.at,
                "paid_at": if status == "paid" { json!(s.at) } else { Value::Null },
                "failed_at": if failed { json!(s.at) } else { Value::Null },
                "failed_reason": if failed { json!({"code": "card_declined", "message": "Your card was declined."}) } else { Value::Null },
                "charge_type": "recurring",
                "payer": payer(s),
                "payment_source": {"id": "cps_demo", "payment_method": "card", "card_type": "visa", "last4": "4242", "status": "active"},
                "totals": {"grand_total": {"amount": s.amount_cents, "amount_formatted": amount, "currency": "USD", "currency_symbol": "$"}},
                "subscription_items": [item(s, "commerce_subscription_item", if failed { "past_due" } else { "active" }, false)],
            })
        }
        _ => return None,
    };
    Some(envelope(event_type, s.at, data))
}

/// A fresh id in Clerk's style (`prefix_` + 27 base62 characters).
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let tail: String = (0..27)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::events::{parse, Change};

    #[test]
    fn every_listed_type_builds_and_parses_back() {
        let spec = Spec {
            user_id: "user_1".into(),
            email: "a@example.com".into(),
            org_id: None,
            plan_slug: "pro".into(),
            plan_name: "Pro".into(),
            amount_cents: 2000,
            annual: false,
            item_id: "csub_item_1".into(),
            subscription_id: "csub_1".into(),
            status: "active".into(),
            period_start: 1_000_000_000_000,
            period_end: Some(1_000_000_000_000 + 30 * DAY_MS),
            canceled_at: None,
            past_due_at: None,
            free_trial: false,
            at: 1_000_000_000_500,
        };
        for t in TYPES {
            let v = build(t, &spec).unwrap_or_else(|| panic!("{t}"));
            let ev = parse(v.to_string().as_bytes()).unwrap();
            assert_eq!(ev.event_type, *t);
            ev.changes(0).unwrap_or_else(|e| panic!("{t}: {e}"));
        }
        let v = build("subscriptionItem.canceled", &spec).unwrap();
        let changes = parse(v.to_string().as_bytes()).unwrap().changes(0).unwrap();
        assert!(matches!(&changes[0], Change::Item(i) if i.status.as_str() == "canceled"));
    }
}
