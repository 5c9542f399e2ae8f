//! One payer's plan in words: the name, the price, the status and the date that matters, and
//! whether it is paid. Every place that shows a plan reads it from here (the dashboard, the
//! billing page, the console's payer page, `GET /api/billing`), so they cannot drift apart.

use super::{
    dates::DAY_MS,
    payments::{date_line, money},
    Catalog, Decision, ItemState, Status,
};

/// What a summary is made from: a stored item, or an entitlement decision (which may rest on
/// the token alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanFacts<'a> {
    pub slug: Option<&'a str>,
    /// The plan's name as Clerk sent it (shown when `PLANS_FILE` does not know the plan).
    pub stored_name: Option<&'a str>,
    pub status: Option<Status>,
    pub is_free_trial: bool,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub past_due_at: Option<i64>,
}

impl<'a> PlanFacts<'a> {
    pub fn of_item(item: Option<&'a ItemState>) -> PlanFacts<'a> {
        item.map_or_else(PlanFacts::default, |i| PlanFacts {
            slug: Some(&i.plan_slug),
            stored_name: i.plan_name.as_deref(),
            status: Some(i.status),
            is_free_trial: i.is_free_trial,
            period_start: i.period_start,
            period_end: i.period_end,
            past_due_at: i.past_due_at,
        })
    }

    pub fn of_decision(d: &'a Decision) -> PlanFacts<'a> {
        PlanFacts {
            slug: d.plan.as_deref(),
            stored_name: None,
            status: d.status,
            is_free_trial: d.is_free_trial,
            period_start: d.period_start,
            period_end: d.period_end,
            past_due_at: d.past_due_at,
        }
    }
}

/// A period longer than this is billed annually (Clerk's periods are a month or a year).
const ANNUAL_AFTER_MS: i64 = 40 * DAY_MS;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanSummary {
    pub slug: Option<String>,
    /// `PLANS_FILE`'s name, else Clerk's, else the slug; `None` without a plan.
    pub name: Option<String>,
    /// "$20.00 a month" / "$192.00 a year": what the card is charged (paid plans only).
    pub price: Option<String>,
    pub status: Option<Status>,
    /// "Active", "Free trial", "Payment overdue", ….
    pub status_words: Option<String>,
    /// The date that matters, in words ("Renews on 3 January 2027").
    pub date_line: Option<String>,
    /// A plan `PLANS_FILE` prices above nothing.
    pub paid: bool,
}

impl PlanSummary {
    pub fn of(catalog: &Catalog, facts: PlanFacts<'_>) -> PlanSummary {
        let plan = facts.slug.and_then(|s| catalog.plan(s));
        let annual = facts
            .period_end
            .zip(facts.period_start)
            .is_some_and(|(e, s)| e - s > ANNUAL_AFTER_MS);
        let price = plan.filter(|p| !p.is_free()).map(|p| {
            let yearly = annual && p.annual_cents > 0;
            let per = if yearly { "a year" } else { "a month" };
            format!("{} {per}", money(i64::from(p.price_cents(yearly)), "USD"))
        });
        PlanSummary {
            slug: facts.slug.map(str::to_string),
            name: match (plan, facts.slug) {
                (Some(p), _) => Some(p.name.clone()),
                (None, Some(slug)) => Some(facts.stored_name.unwrap_or(slug).to_string()),
                (None, None) => None,
            },
            price,
            status: facts.status,
            status_words: facts.status.map(|s| {
                if facts.is_free_trial && s == Status::Active {
                    "Free trial".to_string()
                } else {
                    s.words().to_string()
                }
            }),
            date_line: facts.status.and_then(|s| {
                date_line(s, facts.is_free_trial, facts.period_end, facts.past_due_at)
            }),
            paid: plan.is_some_and(|p| !p.is_free()),
        }
    }

    pub fn past_due(&self) -> bool {
        self.status == Some(Status::PastDue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_toml(include_str!("../../plans.toml")).unwrap()
    }

    const JAN_1_2027: i64 = 1_798_761_600_000;

    fn facts(slug: &'static str, status: Status) -> PlanFacts<'static> {
        PlanFacts {
            slug: Some(slug),
            status: Some(status),
            period_start: Some(JAN_1_2027 - 31 * DAY_MS),
            period_end: Some(JAN_1_2027),
            ..PlanFacts::default()
        }
    }

    #[test]
    fn a_paid_plan_reads_with_its_price_status_and_date() {
        let s = PlanSummary::of(&catalog(), facts("pro", Status::Active));
        assert_eq!(s.name.as_deref(), Some("Pro"));
        assert_eq!(s.price.as_deref(), Some("$20.00 a month"));
        assert_eq!(s.status_words.as_deref(), Some("Active"));
        assert_eq!(s.date_line.as_deref(), Some("Renews on 1 January 2027"));
        assert!(s.paid && !s.past_due());
        assert_eq!(s.slug.as_deref(), Some("pro"));
    }

    #[test]
    fn an_annual_period_quotes_the_annual_price() {
        let mut f = facts("pro", Status::Active);
        f.period_start = Some(JAN_1_2027 - 365 * DAY_MS);
        let s = PlanSummary::of(&catalog(), f);
        assert_eq!(s.price.as_deref(), Some("$192.00 a year"));
        // Exactly the bound is still a month.
        f.period_start = Some(JAN_1_2027 - ANNUAL_AFTER_MS);
        assert_eq!(
            PlanSummary::of(&catalog(), f).price.as_deref(),
            Some("$20.00 a month")
        );
    }

    #[test]
    fn a_plan_without_an_annual_price_quotes_its_monthly_one_whatever_the_period() {
        let mut f = facts("starter", Status::Active);
        f.period_start = Some(JAN_1_2027 - 365 * DAY_MS);
        assert_eq!(
            PlanSummary::of(&catalog(), f).price.as_deref(),
            Some("$9.00 a month")
        );
    }

    #[test]
    fn an_item_and_a_decision_hand_over_every_fact() {
        use crate::billing::{subscription::ItemPayer, PayerKind, Source, Standing};
        let item = ItemState {
            id: "csub_item_1".into(),
            subscription_id: None,
            payer: ItemPayer {
                kind: PayerKind::User,
                id: "user_1".into(),
                user_id: Some("user_1".into()),
                email: None,
            },
            plan_slug: "pro".into(),
            plan_name: Some("Pro (Clerk)".into()),
            status: Status::PastDue,
            period_start: Some(1),
            period_end: Some(2),
            is_free_trial: true,
            canceled_at: None,
            past_due_at: Some(3),
            event_at: 4,
            inferred: false,
            standing: Standing::default(),
        };
        let expected = PlanFacts {
            slug: Some("pro"),
            stored_name: Some("Pro (Clerk)"),
            status: Some(Status::PastDue),
            is_free_trial: true,
            period_start: Some(1),
            period_end: Some(2),
            past_due_at: Some(3),
        };
        assert_eq!(PlanFacts::of_item(Some(&item)), expected);
        assert_eq!(PlanFacts::of_item(None), PlanFacts::default());
        let decision = Decision {
            allowed: false,
            plan: Some("pro".into()),
            status: Some(Status::PastDue),
            reason: "past_due",
            source: Source::Database,
            until: None,
            scope: Some(PayerKind::User),
            is_free_trial: true,
            period_start: Some(1),
            period_end: Some(2),
            past_due_at: Some(3),
        };
        assert_eq!(
            PlanFacts::of_decision(&decision),
            PlanFacts {
                stored_name: None,
                ..expected
            }
        );
    }

    #[test]
    fn a_trial_a_free_plan_and_no_plan_read_as_what_they_are() {
        let mut f = facts("pro", Status::Active);
        f.is_free_trial = true;
        let s = PlanSummary::of(&catalog(), f);
        assert_eq!(s.status_words.as_deref(), Some("Free trial"));
        assert_eq!(s.date_line.as_deref(), Some("Trial ends on 1 January 2027"));
        let free = PlanSummary::of(&catalog(), facts("free_user", Status::Active));
        assert!(!free.paid && free.price.is_none());
        let none = PlanSummary::of(&catalog(), PlanFacts::default());
        assert_eq!(none, PlanSummary::default());
    }

    #[test]
    fn a_plan_the_file_lacks_is_named_as_clerk_named_it_and_never_paid() {
        let mut f = facts("gold", Status::PastDue);
        f.past_due_at = Some(JAN_1_2027);
        let s = PlanSummary::of(&catalog(), f);
        assert_eq!(s.name.as_deref(), Some("gold"));
        f.stored_name = Some("Gold");
        let s = PlanSummary::of(&catalog(), f);
        assert_eq!(s.name.as_deref(), Some("Gold"));
        assert!(!s.paid && s.price.is_none() && s.past_due());
        assert_eq!(s.status_words.as_deref(), Some("Payment overdue"));
        assert_eq!(
            s.date_line.as_deref(),
            Some("Payment overdue since 1 January 2027")
        );
    }
}
