//! The entitlement decision: one pure function of (webhook-maintained state, token claims,
//! now, policy), used by pages, server functions and APIs alike.
//!
//! Newest evidence wins. The database state is stamped with the event time of the webhook that
//! produced it; the token's `pla` with the token's `iat`. A user who just paid carries the new
//! plan in a fresh token before the webhook lands; a cancellation the database already knows is
//! not undone by a token minted before it.

use serde::{Deserialize, Serialize};

use super::{
    authorization::{check_org, check_reverification, combine, Ask, AuthObject, Check},
    kinds::{PayerKind, Status},
    plans::{parse_scoped, Catalog, Gate},
    subscription::ItemState,
};

const DAY_MS: i64 = 86_400_000;

/// How long an `active` item keeps access after its `period_end` without newer evidence. At a
/// renewal Clerk sends the item with its next period; when that event is lost (or the ending
/// events are), the item would otherwise allow forever. Three days outlast Svix's whole retry
/// schedule (about 27 hours after the first attempt) with room for Stripe's own retry of the
/// renewal charge, so a late renewal never locks a paying user out; a lost cancellation costs
/// at most three days of access, less once reconciliation runs.
pub const ACTIVE_PAST_PERIOD_GRACE_MS: i64 = 3 * DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a past-due subscription keeps access, from the moment it became past due.
    pub past_due_grace_ms: i64,
    /// How long an active item keeps access past its `period_end` without newer evidence.
    pub active_overrun_ms: i64,
}

impl Policy {
    pub fn with_grace_days(days: i64) -> Self {
        Policy {
            past_due_grace_ms: days.saturating_mul(DAY_MS),
            active_overrun_ms: ACTIVE_PAST_PERIOD_GRACE_MS,
        }
    }

    /// Whether `item` says active but its period ended longer ago than the grace allows.
    fn period_overrun(self, item: &ItemState, now_ms: i64) -> bool {
        item.status == Status::Active
            && item
                .period_end
                .is_some_and(|end| now_ms >= end.saturating_add(self.active_overrun_ms))
    }
}

/// The plan a verified token claims (`pla`), with its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPlan {
    pub scope: PayerKind,
    pub slug: String,
}

impl TokenPlan {
    /// Parses Clerk's `pla` claim (`u:pro`, `o:team`).
    pub fn parse(pla: &str) -> Option<TokenPlan> {
        let (scopes, slug) = parse_scoped(pla)?;
        // A plan belongs to exactly one payer; `ou:` makes no sense for `pla`.
        (scopes.len() == 1).then(|| TokenPlan {
            scope: scopes[0],
            slug: slug.to_string(),
        })
    }
}

/// Everything the decision may look at.
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    /// The user's own current subscription item, from the database.
    pub user_item: Option<&'a ItemState>,
    /// The active organization's current item, when the token names an active organization.
    pub org_item: Option<&'a ItemState>,
    pub active_org: bool,
    pub token_plan: Option<TokenPlan>,
    /// Raw `fea` entries (`u:reports`, `ou:api`).
    pub token_features: Vec<String>,
    /// The token's `iat`, in milliseconds.
    pub token_iat_ms: i64,
    /// What the session says for the organization and reverification dimensions (`None`: a
    /// caller without a session token, which fails both).
    pub authorization: Option<&'a AuthObject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Database,
    Token,
    None,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Database => "database",
            Source::Token => "token",
            Source::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub plan: Option<String>,
    pub status: Option<Status>,
    /// Short machine-readable reason, e.g. `active`, `past_due_grace`, `plan_not_in_gate`.
    pub reason: &'static str,
    pub source: Source,
    /// When access (or the period shown) ends, in ms; `None` when open-ended or unknown.
    pub until: Option<i64>,
    pub scope: Option<PayerKind>,
    pub is_free_trial: bool,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub past_due_at: Option<i64>,
}

struct View<'a> {
    scope: PayerKind,
    source: Source,
    plan: String,
    status: Status,
    item: Option<&'a ItemState>,
}

fn choose<'a>(
    scope: PayerKind,
    db: Option<&'a ItemState>,
    ev: &Evidence<'_>,
    now_ms: i64,
    policy: Policy,
) -> Option<View<'a>> {
    let token = ev.token_plan.as_ref().filter(|t| t.scope == scope);
    let from_db = |d: &'a ItemState| View {
        scope,
        source: Source::Database,
        plan: d.plan_slug.clone(),
        status: d.status,
        item: Some(d),
    };
    let from_token = |t: &TokenPlan| View {
        scope,
        source: Source::Token,
        plan: t.slug.clone(),
        status: Status::Active,
        item: None,
    };
    match (db, token) {
        // `pla` names a plan, not a payment status: when it names the plan the database already
        // shows, the database's status (past due, canceled) decides. Only a terminal item
        // (ended, abandoned) under a newer token means a new subscription the webhook has not
        // brought yet, and so does an active item long past its period: a token minted since
        // says Clerk still counts the plan (the renewal's webhook has not come).
        (Some(d), Some(t))
            if t.slug == d.plan_slug
                && !matches!(d.status, Status::Ended | Status::Abandoned)
                && !(policy.period_overrun(d, now_ms) && ev.token_iat_ms > d.event_at) =>
        {
            Some(from_db(d))
        }
        (Some(d), Some(_)) if d.event_at >= ev.token_iat_ms => Some(from_db(d)),
        (Some(_), Some(t)) => Some(from_token(t)),
        (Some(d), None) => Some(from_db(d)),
        (None, Some(t)) => Some(from_token(t)),
        (None, None) => None,
    }
}

/// Whether the status lets access through at `now`, with the reason and the end of access.
fn status_allows(
    view: &View<'_>,
    now_ms: i64,
    policy: Policy,
) -> (bool, &'static str, Option<i64>) {
    let item = view.item;
    let period_end = item.and_then(|i| i.period_end);
    match view.status {
        Status::Active if item.is_some_and(|i| policy.period_overrun(i, now_ms)) => {
            (false, "active_period_over", period_end)
        }
        Status::Active if item.is_some_and(|i| i.is_free_trial) => (true, "free_trial", period_end),
        Status::Active => (true, "active", period_end),
        Status::PastDue => {
            let since = item
                .and_then(|i| i.past_due_at)
                .or(item.map(|i| i.event_at))
                .unwrap_or(now_ms);
            let grace_end = since.saturating_add(policy.past_due_grace_ms);
            if policy.past_due_grace_ms > 0 && now_ms < grace_end {
                (true, "past_due_grace", Some(grace_end))
            } else {
                (false, "past_due", Some(grace_end))
            }
        }
        // A period that was past due and never paid runs to no end: canceling it grants nothing.
        Status::Canceled if item.is_some_and(|i| i.standing.unpaid()) => {
            (false, "canceled_unpaid", period_end)
        }
        Status::Canceled => match period_end {
            Some(end) if now_ms < end => (true, "canceled_in_period", Some(end)),
            _ => (false, "canceled_period_over", period_end),
        },
        Status::Ended => (false, "ended", period_end),
        Status::Abandoned => (false, "abandoned", None),
        Status::Incomplete => (false, "incomplete", None),
        Status::Upcoming => (false, "upcoming", None),
        Status::Unknown => (false, "unknown_status", None),
    }
}

fn gate_allows(view: &View<'_>, ev: &Evidence<'_>, catalog: &Catalog, gate: &Gate) -> bool {
    if gate.allows_plan(view.scope, &view.plan) {
        return true;
    }
    match view.source {
        Source::Database => catalog.plan(&view.plan).is_some_and(|p| {
            gate.allows_any_feature(view.scope, p.features.iter().map(String::as_str))
        }),
        Source::Token => {
            let features = ev.token_features.iter().filter_map(|f| {
                parse_scoped(f)
                    .and_then(|(scopes, name)| scopes.contains(&view.scope).then_some(name))
            });
            gate.allows_any_feature(view.scope, features)
        }
        Source::None => false,
    }
}

fn decision(view: &View<'_>, allowed: bool, reason: &'static str, until: Option<i64>) -> Decision {
    Decision {
        allowed,
        plan: Some(view.plan.clone()),
        status: Some(view.status),
        reason,
        source: view.source,
        until,
        scope: Some(view.scope),
        is_free_trial: view.item.is_some_and(|i| i.is_free_trial),
        period_start: view.item.and_then(|i| i.period_start),
        period_end: view.item.and_then(|i| i.period_end),
        past_due_at: view.item.and_then(|i| i.past_due_at),
    }
}

/// Decides whether `gate` opens for this evidence at `now_ms`.
pub fn decide(
    ev: &Evidence<'_>,
    catalog: &Catalog,
    gate: &Gate,
    now_ms: i64,
    policy: Policy,
) -> Decision {
    let billing = decide_billing(ev, catalog, gate, now_ms, policy);
    if !gate.names_authorization() {
        return billing;
    }
    authorize(billing, gate, ev.authorization)
}

/// The gate's organization and reverification dimensions over the billing decision, as Clerk's
/// `has()` combines them: every dimension the gate names must pass (a gate without plans or
/// features skips billing); the reason is the first dimension that failed.
pub fn authorize(billing: Decision, gate: &Gate, auth: Option<&AuthObject>) -> Decision {
    let none = AuthObject::default();
    let auth = auth.unwrap_or(&none);
    let billing_check = if gate.names_billing() {
        if billing.allowed {
            Check::Pass
        } else {
            Check::Fail
        }
    } else {
        Check::Skip
    };
    let org = organization_check(gate, auth);
    let reverification = check_reverification(
        &Ask {
            reverification: gate.reverification.as_ref().map(|s| s.requirement()),
            ..Ask::default()
        },
        auth,
    );
    let allowed = combine(&[billing_check, org, reverification]);
    let reason = match (billing_check, org, reverification) {
        (Check::Fail, _, _) => billing.reason,
        (_, Check::Fail, _) => "organization_not_allowed",
        (_, _, Check::Fail) => "reverification_required",
        (Check::Pass, _, _) => billing.reason,
        _ => "authorized",
    };
    Decision {
        allowed,
        reason,
        ..billing
    }
}

/// Any one of the gate's roles, and any one of its permissions (each list as `plans` reads).
fn organization_check(gate: &Gate, auth: &AuthObject) -> Check {
    if !gate.names_organization() {
        return Check::Skip;
    }
    let any = |entries: &[String], ask: &dyn Fn(&str) -> Ask<'_>| {
        entries.is_empty()
            || entries
                .iter()
                .any(|e| check_org(&ask(e), auth) == Check::Pass)
    };
    let role = any(&gate.roles, &|r| Ask {
        role: Some(r),
        ..Ask::default()
    });
    let permission = any(&gate.permissions, &|p| Ask {
        permission: Some(p),
        ..Ask::default()
    });
    if role && permission {
        Check::Pass
    } else {
        Check::Fail
    }
}

/// The billing dimension: the payer's plan (newest evidence first) in the gate's plans or
/// features.
fn decide_billing(
    ev: &Evidence<'_>,
    catalog: &Catalog,
    gate: &Gate,
    now_ms: i64,
    policy: Policy,
) -> Decision {
    let mut views = Vec::with_capacity(2);
    if ev.active_org {
        views.extend(choose(PayerKind::Org, ev.org_item, ev, now_ms, policy));
    }
    views.extend(choose(PayerKind::User, ev.user_item, ev, now_ms, policy));

    let mut first_denial: Option<Decision> = None;
    for view in &views {
        let (status_ok, reason, until) = status_allows(view, now_ms, policy);
        let in_gate = gate_allows(view, ev, catalog, gate);
        if status_ok && in_gate {
            return decision(view, true, reason, until);
        }
        let reason = if status_ok {
            "plan_not_in_gate"
        } else {
            reason
        };
        first_denial.get_or_insert_with(|| decision(view, false, reason, until));
    }
    first_denial.unwrap_or(Decision {
        allowed: false,
        plan: None,
        status: None,
        reason: "no_subscription",
        source: Source::None,
        until: None,
        scope: None,
        is_free_trial: false,
        period_start: None,
        period_end: None,
        past_due_at: None,
    })
}

/// A decision's reason in the words a subscriber reads (pages never show the code).
pub fn reason_words(reason: &str) -> &'static str {
    match reason {
        "active" => "Your plan is active.",
        "free_trial" => "You are in a free trial.",
        "past_due_grace" => {
            "Your last payment failed. Access continues for a few days while it is retried."
        }
        "past_due" => "Your last payment failed, so premium access is paused until it succeeds.",
        "organization_not_allowed" => {
            "Your role in the active organization does not open this (or no organization is active)."
        }
        "reverification_required" => "Verify your identity again to open this.",
        "authorized" => "You are allowed in.",
        "canceled_in_period" => {
            "Your subscription is canceled. Access continues until the period ends."
        }
        "canceled_period_over" | "ended" => "Your subscription has ended.",
        "canceled_unpaid" => "Your subscription was canceled while a payment was overdue.",
        "active_period_over" => "Your billing period is over and the renewal has not arrived yet.",
        "incomplete" => "Your subscription is waiting for its first payment.",
        "upcoming" => "Your subscription has not started yet.",
        "abandoned" => "Your checkout was not completed.",
        "no_subscription" => "You have no subscription yet.",
        "unknown_status" => {
            "Your subscription is in a state this app does not know; please contact support."
        }
        _ => "Your plan does not include this page.",
    }
}

#[cfg(test)]
mod words_tests {
    #[test]
    fn every_reason_reads_in_words() {
        use super::reason_words;
        let all = [
            "organization_not_allowed",
            "reverification_required",
            "authorized",
            "active",
            "free_trial",
            "past_due_grace",
            "past_due",
            "canceled_in_period",
            "canceled_period_over",
            "ended",
            "canceled_unpaid",
            "active_period_over",
            "incomplete",
            "upcoming",
            "abandoned",
            "no_subscription",
            "unknown_status",
            "plan_not_in_gate",
        ];
        let mut seen = std::collections::HashSet::new();
        for r in all {
            let w = reason_words(r);
            assert!(w.ends_with('.') && !w.contains('_'), "{r}: {w}");
            seen.insert(w);
        }
        assert_eq!(
            seen.len(),
            all.len() - 1,
            "ended and canceled_period_over read alike"
        );
        assert_eq!(
            reason_words("plan_not_in_gate"),
            "Your plan does not include this page."
        );
        assert_eq!(
            reason_words("something_new"),
            "Your plan does not include this page."
        );
        assert_eq!(
            reason_words("past_due"),
            "Your last payment failed, so premium access is paused until it succeeds."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::subscription::{ItemPayer, PayerKind};

    fn catalog() -> Catalog {
        Catalog::from_toml(
            r#"
            [[plans]]
            slug = "free_user"
            name = "Free"
            [[plans]]
            slug = "pro"
            name = "Pro"
            monthly_cents = 2000
            [[plans]]
            slug = "max"
            name = "Max"
            monthly_cents = 9000
            features = ["premium_dashboard"]
            [[plans]]
            slug = "team"
            name = "Team"
            for = "organization"
            monthly_cents = 9900
            [gates.premium]
            plans = ["u:pro", "o:team"]
            features = ["u:premium_dashboard"]
        "#,
        )
        .unwrap()
    }

    fn item(plan: &str, status: Status, event_at: i64) -> ItemState {
        ItemState {
            id: "csub_item_1".into(),
            subscription_id: None,
            payer: ItemPayer {
                kind: PayerKind::User,
                id: "user_1".into(),
                user_id: Some("user_1".into()),
                email: None,
            },
            plan_slug: plan.into(),
            plan_name: None,
            status,
            period_start: Some(0),
            period_end: Some(10_000),
            is_free_trial: false,
            canceled_at: None,
            past_due_at: None,
            event_at,
            inferred: false,
            standing: Default::default(),
        }
    }

    /// `decide` through a gate written as TOML, for `auth`, with an active Pro item.
    fn through(gate_toml: &str, auth: Option<&AuthObject>) -> Decision {
        let c = Catalog::from_toml(&format!(
            r#"
            [[plans]]
            slug = "pro"
            name = "Pro"
            monthly_cents = 2000
            [[plans]]
            slug = "free_user"
            name = "Free"
            [gates.premium]
            plans = ["u:pro"]
            [gates.g]
            {gate_toml}
            "#
        ))
        .unwrap();
        let pro = item("pro", Status::Active, 1);
        let ev = Evidence {
            user_item: Some(&pro),
            authorization: auth,
            ..Default::default()
        };
        decide(&ev, &c, c.gate("g").unwrap(), 5, Policy::with_grace_days(0))
    }

    fn admin(fva: Option<[i64; 2]>) -> AuthObject {
        AuthObject {
            user_id: Some("user_1".into()),
            org_id: Some("org_1".into()),
            org_role: Some("org:admin".into()),
            org_permissions: Some(vec!["org:reports:read".into()]),
            factor_verification_age: fva,
            ..AuthObject::default()
        }
    }

    #[test]
    fn each_dimension_the_gate_names_must_pass_and_the_first_failure_is_the_reason() {
        let fresh = admin(Some([0, -1]));
        let stale = admin(Some([30, -1]));
        let cases: [(&str, Option<&AuthObject>, bool, &str); 14] = [
            // Billing alone: the plan decides, as before.
            (r#"plans = ["u:pro"]"#, None, true, "active"),
            (
                r#"plans = ["u:free_user"]"#,
                None,
                false,
                "plan_not_in_gate",
            ),
            // Organization alone (billing skipped): the role, any one of the list.
            (r#"roles = ["admin"]"#, Some(&fresh), true, "authorized"),
            (
                r#"roles = ["member", "org:admin"]"#,
                Some(&fresh),
                true,
                "authorized",
            ),
            (
                r#"roles = ["member"]"#,
                Some(&fresh),
                false,
                "organization_not_allowed",
            ),
            (
                r#"roles = ["admin"]"#,
                None,
                false,
                "organization_not_allowed",
            ),
            (
                r#"permissions = ["org:reports:read"]"#,
                Some(&fresh),
                true,
                "authorized",
            ),
            (
                r#"permissions = ["reports:manage"]"#,
                Some(&fresh),
                false,
                "organization_not_allowed",
            ),
            // Reverification alone.
            (
                r#"reverification = "strict""#,
                Some(&fresh),
                true,
                "authorized",
            ),
            (
                r#"reverification = "strict""#,
                Some(&stale),
                false,
                "reverification_required",
            ),
            (
                r#"reverification = "lax""#,
                Some(&stale),
                true,
                "authorized",
            ),
            // Together: every one, and the billing reason first.
            (
                r#"plans = ["u:pro"]
                   roles = ["admin"]
                   reverification = "strict""#,
                Some(&fresh),
                true,
                "active",
            ),
            (
                r#"plans = ["u:free_user"]
                   roles = ["member"]
                   reverification = "strict""#,
                Some(&stale),
                false,
                "plan_not_in_gate",
            ),
            (
                r#"plans = ["u:pro"]
                   roles = ["admin"]
                   permissions = ["org:other:read"]"#,
                Some(&fresh),
                false,
                "organization_not_allowed",
            ),
        ];
        for (gate, auth, allowed, reason) in cases {
            let d = through(gate, auth);
            assert_eq!((d.allowed, d.reason), (allowed, reason), "{gate}");
            assert_eq!(
                d.plan.as_deref(),
                Some("pro"),
                "the plan read is kept: {gate}"
            );
        }
        // Role and permission named together: both, in the same organization.
        let both = r#"roles = ["admin"]
                      permissions = ["org:reports:read"]"#;
        assert!(through(both, Some(&fresh)).allowed);
        let mut no_permission = admin(Some([0, -1]));
        no_permission.org_permissions = Some(vec![]);
        assert!(!through(both, Some(&no_permission)).allowed);
        // Billing and reverification: a fresh sign-in does not carry a missing plan.
        let gate = r#"plans = ["u:free_user"]
                      reverification = "strict""#;
        assert_eq!(through(gate, Some(&fresh)).reason, "plan_not_in_gate");
        let gate = r#"plans = ["u:pro"]
                      reverification = "strict""#;
        assert_eq!(
            through(gate, Some(&stale)).reason,
            "reverification_required"
        );
        assert!(through(gate, Some(&fresh)).allowed);
    }

    fn run(ev: &Evidence<'_>, now: i64, grace_days: i64) -> Decision {
        let c = catalog();
        let g = c.gate("premium").unwrap().clone();
        decide(ev, &c, &g, now, Policy::with_grace_days(grace_days))
    }

    #[test]
    fn active_listed_plan_is_allowed_and_free_is_not() {
        let pro = item("pro", Status::Active, 1);
        let d = run(
            &Evidence {
                user_item: Some(&pro),
                ..Default::default()
            },
            5,
            0,
        );
        assert!(d.allowed);
        assert_eq!(d.source, Source::Database);
        let free = item("free_user", Status::Active, 1);
        let d = run(
            &Evidence {
                user_item: Some(&free),
                ..Default::default()
            },
            5,
            0,
        );
        assert!(!d.allowed);
        assert_eq!(d.reason, "plan_not_in_gate");
    }

    #[test]
    fn a_paid_plan_the_gate_does_not_name_is_denied_unless_a_feature_opens_it() {
        let mut other = item("enterprise_x", Status::Active, 1);
        assert!(
            !run(
                &Evidence {
                    user_item: Some(&other),
                    ..Default::default()
                },
                5,
                0
            )
            .allowed
        );
        other.plan_slug = "max".into();
        assert!(
            run(
                &Evidence {
                    user_item: Some(&other),
                    ..Default::default()
                },
                5,
                0
            )
            .allowed
        );
    }

    #[test]
    fn canceled_allows_until_period_end() {
        let c = item("pro", Status::Canceled, 1);
        let ev = Evidence {
            user_item: Some(&c),
            ..Default::default()
        };
        let before = run(&ev, 9_999, 0);
        assert!(before.allowed);
        assert_eq!(before.until, Some(10_000));
        assert!(!run(&ev, 10_000, 0).allowed);
    }

    #[test]
    fn past_due_denies_without_grace_and_allows_within_grace() {
        let mut p = item("pro", Status::PastDue, 1);
        p.past_due_at = Some(1_000);
        let ev = Evidence {
            user_item: Some(&p),
            ..Default::default()
        };
        assert!(!run(&ev, 1_001, 0).allowed);
        let d = run(&ev, 1_001, 3);
        assert!(d.allowed);
        assert_eq!(d.until, Some(1_000 + 3 * DAY_MS));
        assert!(!run(&ev, 1_000 + 3 * DAY_MS, 3).allowed);
    }

    #[test]
    fn ended_abandoned_incomplete_and_unknown_deny() {
        for s in [
            Status::Ended,
            Status::Abandoned,
            Status::Incomplete,
            Status::Unknown,
            Status::Upcoming,
        ] {
            let i = item("pro", s, 1);
            assert!(
                !run(
                    &Evidence {
                        user_item: Some(&i),
                        ..Default::default()
                    },
                    5,
                    30
                )
                .allowed,
                "{s:?}"
            );
        }
    }

    #[test]
    fn newer_token_plan_wins_over_older_database_state() {
        let free = item("free_user", Status::Active, 1_000);
        let ev = Evidence {
            user_item: Some(&free),
            token_plan: TokenPlan::parse("u:pro"),
            token_iat_ms: 2_000,
            ..Default::default()
        };
        let d = run(&ev, 2_500, 0);
        assert!(d.allowed, "paid in token, webhook still in flight");
        assert_eq!(d.source, Source::Token);
    }

    #[test]
    fn newer_database_cancellation_wins_over_an_older_token() {
        let ended = item("pro", Status::Ended, 3_000);
        let ev = Evidence {
            user_item: Some(&ended),
            token_plan: TokenPlan::parse("u:pro"),
            token_iat_ms: 2_000,
            ..Default::default()
        };
        let d = run(&ev, 3_500, 0);
        assert!(!d.allowed);
        assert_eq!(d.source, Source::Database);
        assert_eq!(d.reason, "ended");
    }

    #[test]
    fn a_newer_token_naming_the_same_plan_does_not_lift_past_due_or_cancellation() {
        let mut p = item("pro", Status::PastDue, 1_000);
        p.past_due_at = Some(1_000);
        let ev = Evidence {
            user_item: Some(&p),
            token_plan: TokenPlan::parse("u:pro"),
            token_iat_ms: 60_000,
            ..Default::default()
        };
        let d = run(&ev, 61_000, 0);
        assert!(
            !d.allowed,
            "clerk-js refreshes the token every minute; past due must hold"
        );
        assert_eq!(d.source, Source::Database);
        let ended = item("pro", Status::Ended, 1_000);
        let ev = Evidence {
            user_item: Some(&ended),
            ..ev
        };
        assert!(
            run(&ev, 2_000, 0).allowed,
            "a newer token after an ended item is a new subscription"
        );
    }

    #[test]
    fn an_org_plan_does_not_open_a_user_plan_gate() {
        let ev = Evidence {
            active_org: true,
            token_plan: TokenPlan::parse("o:pro"),
            token_iat_ms: 1,
            ..Default::default()
        };
        let d = run(&ev, 2, 0);
        assert!(!d.allowed);
        assert_eq!(d.reason, "plan_not_in_gate");
        let ev = Evidence {
            token_plan: TokenPlan::parse("o:team"),
            ..ev
        };
        assert!(run(&ev, 2, 0).allowed);
    }

    #[test]
    fn token_features_open_a_feature_gate_only_in_their_scope() {
        let ev = Evidence {
            token_plan: TokenPlan::parse("u:custom"),
            token_features: vec!["o:premium_dashboard".into()],
            token_iat_ms: 1,
            ..Default::default()
        };
        assert!(!run(&ev, 2, 0).allowed);
        let ev = Evidence {
            token_features: vec!["ou:premium_dashboard".into()],
            ..ev
        };
        assert!(run(&ev, 2, 0).allowed);
    }

    #[test]
    fn nothing_known_is_no_subscription() {
        let d = run(&Evidence::default(), 1, 0);
        assert!(!d.allowed);
        assert_eq!(d.reason, "no_subscription");
        assert_eq!(d.source, Source::None);
    }

    #[test]
    fn an_active_item_long_past_its_period_stops_allowing() {
        let end = 10_000;
        let cutoff = end + ACTIVE_PAST_PERIOD_GRACE_MS;
        for trial in [false, true] {
            let mut pro = item("pro", Status::Active, 1);
            pro.is_free_trial = trial;
            let ev = Evidence {
                user_item: Some(&pro),
                ..Default::default()
            };
            let before = run(&ev, cutoff - 1, 0);
            assert!(before.allowed, "within the grace: {before:?}");
            let after = run(&ev, cutoff, 0);
            assert!(!after.allowed, "past the grace: {after:?}");
            assert_eq!(after.reason, "active_period_over");
            assert_eq!(after.until, Some(end));
        }
        // No period end (a free plan): open-ended.
        let mut free = item("max", Status::Active, 1);
        free.period_end = None;
        let ev = Evidence {
            user_item: Some(&free),
            ..Default::default()
        };
        assert!(run(&ev, i64::MAX / 2, 0).allowed);
    }

    #[test]
    fn the_grace_past_the_period_is_three_days() {
        let pro = item("pro", Status::Active, 1);
        let ev = Evidence {
            user_item: Some(&pro),
            ..Default::default()
        };
        let end = pro.period_end.unwrap();
        assert!(run(&ev, end + 2 * 86_400_000, 0).allowed, "two days late");
        assert!(run(&ev, end + 3 * 86_400_000 - 1, 0).allowed);
        assert!(
            !run(&ev, end + 3 * 86_400_000, 0).allowed,
            "three days late"
        );
    }

    #[test]
    fn sources_have_the_names_the_api_shows() {
        assert_eq!(Source::Database.as_str(), "database");
        assert_eq!(Source::Token.as_str(), "token");
        assert_eq!(Source::None.as_str(), "none");
    }

    #[test]
    fn a_token_minted_after_the_stale_state_still_vouches_for_the_plan() {
        let end = 10_000;
        let now = end + ACTIVE_PAST_PERIOD_GRACE_MS + 1;
        let pro = item("pro", Status::Active, 5_000);
        let token = |iat| Evidence {
            user_item: Some(&pro),
            token_plan: TokenPlan::parse("u:pro"),
            token_iat_ms: iat,
            ..Default::default()
        };
        let d = run(&token(now - 1_000), now, 0);
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.source, Source::Token);
        let d = run(&token(4_000), now, 0);
        assert!(!d.allowed, "a token older than the state does not: {d:?}");
        assert_eq!(d.reason, "active_period_over");
        // Within the period, the database decides as before.
        let d = run(&token(now - 1_000), end - 1, 0);
        assert_eq!(d.source, Source::Database);
    }

    /// Property: for random evidence, the decision never allows a plan the gate does not name
    /// (unless a feature opens it), and never allows a denying status.
    #[test]
    fn property_decisions_respect_the_gate_and_the_status_policy() {
        let statuses = Status::ALL;
        let plans = ["free_user", "pro", "max", "team", "other"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..5_000 {
            let mut i = item(
                plans[next(5) as usize],
                statuses[next(8) as usize],
                next(10_000) as i64,
            );
            i.period_end = Some(next(20_000) as i64);
            i.past_due_at = Some(next(10_000) as i64);
            let token = (next(2) == 0).then(|| TokenPlan {
                scope: if next(2) == 0 {
                    PayerKind::User
                } else {
                    PayerKind::Org
                },
                slug: plans[next(5) as usize].into(),
            });
            let ev = Evidence {
                user_item: Some(&i),
                active_org: next(2) == 0,
                token_plan: token,
                token_iat_ms: next(10_000) as i64,
                ..Default::default()
            };
            let now = next(20_000) as i64;
            let d = run(&ev, now, 0);
            if d.allowed {
                let plan = d.plan.clone().unwrap();
                let scope = d.scope.unwrap();
                let named = matches!(
                    (scope, plan.as_str()),
                    (PayerKind::User, "pro") | (PayerKind::Org, "team")
                ) || (scope == PayerKind::User && plan == "max");
                assert!(named, "{d:?}");
                let status = d.status.unwrap();
                assert!(matches!(status, Status::Active | Status::Canceled), "{d:?}");
                if status == Status::Active && d.source == Source::Database {
                    assert!(now < i.period_end.unwrap() + ACTIVE_PAST_PERIOD_GRACE_MS);
                }
                if status == Status::Canceled {
                    assert!(now < i.period_end.unwrap());
                }
            }
        }
    }

    /// One item's deliveries, applied in `order` as the writer does: the state of the greatest
    /// order key wins, and every delivery (stale ones too) feeds the payment standing.
    fn apply_all(events: &[(Status, i64)], order: &[usize]) -> ItemState {
        use crate::billing::{OrderKey, Standing};
        let mut stored: Option<(OrderKey, ItemState)> = None;
        let mut standing = Standing::default();
        for &i in order {
            let (status, at) = events[i];
            let mut next = item("pro", status, at);
            next.period_end = Some(1_000_000);
            standing = standing.merge(Standing::evidence(status, false, at));
            let key = OrderKey::for_item(at, status, &format!("msg_{i}"));
            if stored.as_ref().is_none_or(|(k, _)| *k < key) {
                stored = Some((key, next));
            }
        }
        let (_, mut state) = stored.expect("at least one delivery");
        state.standing = standing;
        state
    }

    #[test]
    fn a_period_canceled_while_unpaid_grants_nothing_and_a_paid_one_runs_to_its_end() {
        let failed_then_canceled = [
            (Status::Active, 100),
            (Status::PastDue, 200),
            (Status::Canceled, 300),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [0, 2, 1], [2, 0, 1]] {
            let state = apply_all(&failed_then_canceled, &order);
            assert_eq!(state.status, Status::Canceled);
            let ev = Evidence {
                user_item: Some(&state),
                ..Default::default()
            };
            let d = run(&ev, 500, 30);
            assert!(!d.allowed, "{order:?}: {d:?}");
            assert_eq!(d.reason, "canceled_unpaid");
            assert!(!state.is_live(500), "not the payer's current plan either");
        }
        let recovered = [
            (Status::PastDue, 200),
            (Status::Active, 250),
            (Status::Canceled, 300),
        ];
        let state = apply_all(&recovered, &[2, 0, 1]);
        let ev = Evidence {
            user_item: Some(&state),
            ..Default::default()
        };
        let d = run(&ev, 500, 0);
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.reason, "canceled_in_period");
    }

    proptest::proptest! {
        /// No sequence of deliveries, in any order and with any redeliveries, grants access for
        /// a period whose payment failed and never succeeded after (grace 0).
        #[test]
        fn no_order_of_events_grants_a_period_whose_payment_failed_and_never_succeeded(
            events in proptest::collection::vec(
                (proptest::sample::select(vec![
                    Status::Active, Status::PastDue, Status::Canceled, Status::Upcoming,
                    Status::Ended,
                ]), 0i64..50),
                1..8,
            ),
            order_seed in proptest::collection::vec(0usize..64, 1..16),
            now in 0i64..1_000_000,
        ) {
            // A delivery order: a permutation, with some deliveries repeated.
            let n = events.len();
            let mut order: Vec<usize> = (0..n).collect();
            for (k, s) in order_seed.iter().enumerate() {
                order.swap(k % n, s % n);
            }
            order.extend(order_seed.iter().map(|s| s % n));
            let state = apply_all(&events, &order);
            let failed = events.iter().filter(|(s, _)| *s == Status::PastDue).map(|e| e.1).max();
            let paid_since = |f: i64| {
                events.iter().any(|(s, at)| *s == Status::Active && *at >= f)
            };
            let unpaid = failed.is_some_and(|f| !paid_since(f));
            let ev = Evidence { user_item: Some(&state), ..Default::default() };
            let d = run(&ev, now, 0);
            if unpaid {
                proptest::prop_assert!(!d.allowed, "{:?} {:?} -> {:?}", events, order, d);
            }
        }
    }
}
