//! The demo's billing lifecycle: the Clerk events each pricing or dashboard button sends
//! (subscribe, switch, cancel, fail a payment, recover), in the order Clerk sends them, each
//! a millisecond after the previous so that their order is unambiguous. Pure: built from the
//! payer's stored item, the plans and the time; the demo route signs and posts them.

use serde_json::Value;

use super::events::{self, Spec, DAY_MS};
use crate::billing::{Catalog, ItemState, Plan};

/// A demo billing button.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Subscribe {
        plan: Plan,
        annual: bool,
    },
    /// A free trial of a plan with `trial_days`: no charge until it ends.
    StartTrial {
        plan: Plan,
    },
    /// Clerk's reminder three days before a trial ends (`subscriptionItem.freeTrialEnding`).
    TrialEnding,
    /// The free trial runs until `to` (ms) instead (the operator console's "extend trial").
    ExtendTrial {
        to: i64,
    },
    Cancel,
    /// Canceled with immediate effect (the operator console's "cancel now").
    End,
    FailPayment,
    Recover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no such paid plan")]
    UnknownPlan,
    #[error("unknown demo action")]
    UnknownAction,
    #[error("no paid subscription to change")]
    NoSubscription,
}

impl ActionError {
    /// A short code for the API's error answer.
    pub fn code(self) -> &'static str {
        match self {
            ActionError::UnknownPlan => "unknown_plan",
            ActionError::UnknownAction => "unknown_action",
            ActionError::NoSubscription => "no_subscription",
        }
    }
}

impl Action {
    /// The button a form names: `subscribe` (with a paid `plan`, `period=annual` when the plan
    /// has an annual price), `cancel`, `fail_payment`, `recover`.
    pub fn parse(
        action: &str,
        plan: Option<&str>,
        period: Option<&str>,
        catalog: &Catalog,
    ) -> Result<Action, ActionError> {
        Ok(match action {
            "subscribe" => {
                let plan = catalog
                    .plan(plan.unwrap_or_default())
                    .filter(|p| !p.is_free())
                    .ok_or(ActionError::UnknownPlan)?
                    .clone();
                let annual = period == Some("annual") && plan.annual_cents > 0;
                Action::Subscribe { plan, annual }
            }
            "trial" => Action::StartTrial {
                plan: catalog
                    .plan(plan.unwrap_or_default())
                    .filter(|p| !p.is_free() && p.trial_days > 0)
                    .ok_or(ActionError::UnknownPlan)?
                    .clone(),
            },
            "trial_ending" => Action::TrialEnding,
            "cancel" => Action::Cancel,
            "fail_payment" => Action::FailPayment,
            "recover" => Action::Recover,
            _ => return Err(ActionError::UnknownAction),
        })
    }
}

/// A new demo user's free item.
pub fn spec_for(user_id: &str, email: &str, now: i64) -> Spec {
    Spec {
        user_id: user_id.into(),
        email: email.into(),
        org_id: None,
        plan_slug: "free_user".into(),
        plan_name: "Free".into(),
        amount_cents: 0,
        annual: false,
        item_id: events::new_id("csub_item"),
        subscription_id: events::new_id("csub"),
        status: "active".into(),
        period_start: now,
        period_end: None,
        canceled_at: None,
        past_due_at: None,
        free_trial: false,
        at: now,
    }
}

/// The Clerk events of one step.
struct Steps {
    now: i64,
    bodies: Vec<Value>,
}

impl Steps {
    fn push(&mut self, event_type: &str, spec: &mut Spec) {
        spec.at = self.now + self.bodies.len() as i64;
        if let Some(b) = events::build(event_type, spec) {
            self.bodies.push(b);
        }
    }
}

/// The events `action` sends for the user `base` describes, whose stored current item is
/// `current`, at `now`.
pub fn events_for(
    action: &Action,
    base: Spec,
    current: Option<&ItemState>,
    catalog: &Catalog,
    now: i64,
) -> Result<Vec<Value>, ActionError> {
    let mut steps = Steps {
        now,
        bodies: Vec::new(),
    };
    match action {
        Action::Subscribe { plan, annual } => {
            subscribe(&mut steps, &base, current, plan, *annual, catalog)
        }
        Action::StartTrial { plan } => {
            if current.is_some_and(|c| catalog.plan(&c.plan_slug).is_some_and(|p| !p.is_free())) {
                return Err(ActionError::NoSubscription);
            }
            let mut spec = base;
            spec.plan_slug = plan.slug.clone();
            spec.plan_name = plan.name.clone();
            spec.amount_cents = plan.monthly_cents;
            spec.free_trial = true;
            spec.period_end = Some(now + i64::from(plan.trial_days) * DAY_MS);
            steps.push("subscription.created", &mut spec);
            steps.push("subscriptionItem.active", &mut spec);
        }
        action => {
            let cur = current
                .filter(|c| catalog.plan(&c.plan_slug).is_some_and(|p| !p.is_free()))
                .ok_or(ActionError::NoSubscription)?;
            let mut spec = base;
            continue_item(&mut spec, cur, catalog, now);
            if *action == Action::Recover {
                // The retry of the attempt that failed.
                spec.past_due_at = cur.past_due_at;
            }
            change_paid(&mut steps, &mut spec, action);
        }
    }
    Ok(steps.bodies)
}

/// `spec` describing the stored item `cur`.
fn continue_item(spec: &mut Spec, cur: &ItemState, catalog: &Catalog, now: i64) {
    spec.item_id = cur.id.clone();
    spec.subscription_id = cur
        .subscription_id
        .clone()
        .unwrap_or_else(|| events::new_id("csub"));
    spec.plan_slug = cur.plan_slug.clone();
    spec.plan_name = cur
        .plan_name
        .clone()
        .unwrap_or_else(|| cur.plan_slug.clone());
    spec.period_start = cur.period_start.unwrap_or(now);
    spec.period_end = cur.period_end;
    spec.free_trial = cur.is_free_trial;
    spec.annual = cur
        .period_end
        .zip(cur.period_start)
        .is_some_and(|(e, s)| e - s > 40 * DAY_MS);
    spec.amount_cents = catalog
        .plan(&cur.plan_slug)
        .map_or(0, |p| p.price_cents(spec.annual));
}

fn subscribe(
    steps: &mut Steps,
    base: &Spec,
    current: Option<&ItemState>,
    plan: &Plan,
    annual: bool,
    catalog: &Catalog,
) {
    let now = steps.now;
    if let Some(cur) = current.filter(|c| c.plan_slug != plan.slug) {
        // Switching: the old item ends as the new one starts.
        let mut old = base.clone();
        continue_item(&mut old, cur, catalog, now);
        old.status = "ended".into();
        steps.push("subscriptionItem.ended", &mut old);
    }
    let mut spec = base.clone();
    spec.plan_slug = plan.slug.clone();
    spec.plan_name = plan.name.clone();
    spec.annual = annual;
    spec.amount_cents = plan.price_cents(annual);
    spec.period_end = Some(now + if annual { 365 } else { 30 } * DAY_MS);
    if let Some(cur) = current.filter(|c| c.plan_slug == plan.slug) {
        spec.item_id = cur.id.clone();
    }
    for t in [
        "paymentAttempt.created",
        "paymentAttempt.updated",
        "subscription.created",
        "subscriptionItem.active",
    ] {
        steps.push(t, &mut spec);
    }
}

fn change_paid(steps: &mut Steps, spec: &mut Spec, action: &Action) {
    match action {
        Action::Cancel => {
            spec.status = "canceled".into();
            spec.canceled_at = Some(steps.now);
            steps.push("subscriptionItem.canceled", spec);
            steps.push("subscription.updated", spec);
        }
        Action::TrialEnding => {
            if spec.free_trial {
                steps.push("subscriptionItem.freeTrialEnding", spec);
            }
        }
        Action::ExtendTrial { to } => {
            if spec.free_trial {
                spec.period_end = Some(*to);
                steps.push("subscriptionItem.updated", spec);
            }
        }
        Action::End => {
            spec.status = "ended".into();
            spec.canceled_at = Some(steps.now);
            spec.period_end = Some(steps.now);
            steps.push("subscriptionItem.ended", spec);
            steps.push("subscription.updated", spec);
        }
        Action::FailPayment => {
            spec.status = "failed".into();
            spec.past_due_at = Some(steps.now);
            steps.push("paymentAttempt.updated", spec);
            spec.status = "past_due".into();
            steps.push("subscriptionItem.pastDue", spec);
            steps.push("subscription.pastDue", spec);
        }
        Action::Recover => {
            spec.status = "active".into();
            steps.push("paymentAttempt.updated", spec);
            spec.past_due_at = None;
            steps.push("subscriptionItem.active", spec);
            steps.push("subscription.active", spec);
        }
        Action::Subscribe { .. } | Action::StartTrial { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        billing::Status,
        webhooks::events::{parse, Change},
    };

    fn catalog() -> Catalog {
        Catalog::from_toml(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml")).unwrap(),
        )
        .unwrap()
    }

    const NOW: i64 = 1_800_000_000_000;

    fn types(bodies: &[Value]) -> Vec<String> {
        bodies
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_string())
            .collect()
    }

    /// The item states the events carry, as the webhook parser reads them.
    fn items(bodies: &[Value]) -> Vec<ItemState> {
        bodies
            .iter()
            .flat_map(|b| {
                parse(&serde_json::to_vec(b).unwrap())
                    .unwrap()
                    .changes(NOW + 60_000)
                    .unwrap()
            })
            .filter_map(|c| match c {
                Change::Item(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    fn states(bodies: &[Value]) -> Vec<(String, Status, i64)> {
        items(bodies)
            .into_iter()
            .map(|i| (i.plan_slug, i.status, i.event_at))
            .collect()
    }

    /// The state of plan `slug`'s item the last of `bodies` describes.
    fn stored(bodies: &[Value], slug: &str) -> ItemState {
        items(bodies)
            .into_iter()
            .rfind(|i| i.plan_slug == slug)
            .unwrap()
    }

    #[test]
    fn buttons_parse_to_actions_and_anything_else_is_refused() {
        let c = catalog();
        let Ok(Action::Subscribe { plan, annual }) =
            Action::parse("subscribe", Some("pro"), Some("annual"), &c)
        else {
            panic!("subscribe parses")
        };
        assert_eq!(plan.slug, "pro");
        assert_eq!(annual, plan.annual_cents > 0);
        assert!(matches!(
            Action::parse("subscribe", Some("pro"), Some("month"), &c),
            Ok(Action::Subscribe { annual: false, .. })
        ));
        assert_eq!(
            Action::parse("subscribe", Some("free_user"), None, &c),
            Err(ActionError::UnknownPlan),
            "a free plan is no subscription"
        );
        assert_eq!(
            Action::parse("subscribe", None, None, &c),
            Err(ActionError::UnknownPlan)
        );
        assert_eq!(Action::parse("cancel", None, None, &c), Ok(Action::Cancel));
        assert_eq!(
            Action::parse("fail_payment", None, None, &c),
            Ok(Action::FailPayment)
        );
        assert_eq!(
            Action::parse("recover", None, None, &c),
            Ok(Action::Recover)
        );
        assert_eq!(
            Action::parse("refund", None, None, &c),
            Err(ActionError::UnknownAction)
        );
        for (e, code) in [
            (ActionError::UnknownPlan, "unknown_plan"),
            (ActionError::UnknownAction, "unknown_action"),
            (ActionError::NoSubscription, "no_subscription"),
        ] {
            assert_eq!(e.code(), code);
            assert!(!e.to_string().is_empty());
        }
        // A plan without an annual price is billed monthly whatever the form asks.
        let monthly_only = Catalog::from_toml(
            r#"
            [[plans]]
            slug = "starter"
            name = "Starter"
            for = "user"
            monthly_cents = 500

            [gates.premium]
            plans = ["u:starter"]
        "#,
        )
        .unwrap();
        assert!(matches!(
            Action::parse("subscribe", Some("starter"), Some("annual"), &monthly_only),
            Ok(Action::Subscribe { annual: false, .. })
        ));
    }

    #[test]
    fn a_change_to_an_item_keeps_its_billing_interval_and_price() {
        let c = catalog();
        let pro = c.plan("pro").unwrap().clone();
        let base = spec_for("user_demo_c", "c@demo.plangate.test", NOW);
        // Item periods: a month, a year, and exactly 40 days (the line: still monthly).
        for (days, annual) in [(30, false), (365, true), (40, false), (41, true)] {
            let mut item = stored(
                &events_for(
                    &Action::parse("subscribe", Some("pro"), None, &c).unwrap(),
                    base.clone(),
                    None,
                    &c,
                    NOW,
                )
                .unwrap(),
                "pro",
            );
            item.period_start = Some(NOW);
            item.period_end = Some(NOW + days * DAY_MS);
            let bodies =
                events_for(&Action::Cancel, base.clone(), Some(&item), &c, NOW + 1).unwrap();
            let data = &bodies[0]["data"];
            let (interval, price) = if annual {
                ("annual", pro.annual_cents)
            } else {
                ("month", pro.monthly_cents)
            };
            assert_eq!(data["interval"], interval, "{days} days");
            assert_eq!(data["plan"]["amount"], price, "{days} days");
        }
    }

    #[test]
    fn a_subscription_is_paid_then_active_and_a_switch_ends_the_old_item_first() {
        let c = catalog();
        let base = spec_for("user_demo_a", "a@demo.plangate.test", NOW);
        let pro = Action::parse("subscribe", Some("pro"), None, &c).unwrap();
        let bodies = events_for(&pro, base.clone(), None, &c, NOW).unwrap();
        assert_eq!(
            types(&bodies),
            [
                "paymentAttempt.created",
                "paymentAttempt.updated",
                "subscription.created",
                "subscriptionItem.active"
            ]
        );
        let s = states(&bodies);
        assert!(s
            .iter()
            .all(|(slug, st, _)| slug == "pro" && *st == Status::Active));
        assert!(
            s.windows(2).all(|w| w[0].2 < w[1].2),
            "each a millisecond after the previous: {s:?}"
        );
        let item = stored(&bodies, "pro");
        assert_eq!(item.period_end, Some(NOW + 30 * DAY_MS));
        let annual = Action::parse("subscribe", Some("pro"), Some("annual"), &c).unwrap();
        let bodies = events_for(&annual, base.clone(), None, &c, NOW).unwrap();
        assert_eq!(stored(&bodies, "pro").period_end, Some(NOW + 365 * DAY_MS));

        // Switching to another plan ends the current item first.
        let switch = Action::parse("subscribe", Some("business"), None, &c).unwrap();
        let fresh = spec_for("user_demo_a", "a@demo.plangate.test", NOW + 10);
        let bodies = events_for(&switch, fresh, Some(&item), &c, NOW + 10).unwrap();
        assert_eq!(types(&bodies)[0], "subscriptionItem.ended");
        let s = states(&bodies);
        assert_eq!((s[0].0.as_str(), s[0].1), ("pro", Status::Ended));
        assert!(s[1..].iter().all(|(slug, _, _)| slug == "business"));
        assert_ne!(stored(&bodies, "business").id, item.id, "a new item");
        // Subscribing again to the same plan keeps the item.
        let again = events_for(&pro, base, Some(&item), &c, NOW + 20).unwrap();
        assert_eq!(stored(&again, "pro").id, item.id);
    }

    #[test]
    fn cancel_fail_and_recover_change_the_paid_item_and_need_one() {
        let c = catalog();
        let base = spec_for("user_demo_b", "b@demo.plangate.test", NOW);
        let pro = Action::parse("subscribe", Some("pro"), Some("annual"), &c).unwrap();
        let item = stored(
            &events_for(&pro, base.clone(), None, &c, NOW).unwrap(),
            "pro",
        );
        for (action, expected_types, last_status) in [
            (
                Action::Cancel,
                vec!["subscriptionItem.canceled", "subscription.updated"],
                Status::Canceled,
            ),
            (
                Action::FailPayment,
                vec![
                    "paymentAttempt.updated",
                    "subscriptionItem.pastDue",
                    "subscription.pastDue",
                ],
                Status::PastDue,
            ),
            (
                Action::Recover,
                vec![
                    "paymentAttempt.updated",
                    "subscriptionItem.active",
                    "subscription.active",
                ],
                Status::Active,
            ),
        ] {
            let bodies = events_for(&action, base.clone(), Some(&item), &c, NOW + 100).unwrap();
            assert_eq!(types(&bodies), expected_types, "{action:?}");
            let s = states(&bodies);
            assert_eq!(s.last().unwrap().1, last_status, "{action:?}");
            let after = stored(&bodies, "pro");
            assert_eq!(after.id, item.id, "the same item");
            assert_eq!(after.period_end, item.period_end, "the same period");
            assert!(
                s.windows(2).all(|w| w[0].2 < w[1].2),
                "in order: {action:?} {s:?}"
            );
        }
        let cancel = events_for(&Action::Cancel, base.clone(), Some(&item), &c, NOW + 5).unwrap();
        assert_eq!(stored(&cancel, "pro").canceled_at, Some(NOW + 5));
        // Nothing paid to change: refused, for the free item and for none.
        let free = stored(
            &[events::build("subscriptionItem.active", &base).unwrap()],
            "free_user",
        );
        for current in [None, Some(&free)] {
            for action in [Action::Cancel, Action::FailPayment, Action::Recover] {
                assert_eq!(
                    events_for(&action, base.clone(), current, &c, NOW),
                    Err(ActionError::NoSubscription)
                );
            }
        }
    }
}
