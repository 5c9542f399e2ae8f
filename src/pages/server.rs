//! Server-side helpers of the server functions: the app state and the caller's session.

use leptos::prelude::*;

use crate::{
    auth::{Caller, Session},
    state::AppState,
};

pub fn state() -> Result<AppState, ServerFnError> {
    use_context::<AppState>().ok_or_else(|| ServerFnError::new("app state missing"))
}

/// The caller's verified session, as the request guard decided it; `None` when signed out or
/// the token did not verify (pages show the signed-out state; the JSON API is stricter and
/// answers 401).
pub async fn session(_state: &AppState) -> Option<Session> {
    let parts = use_context::<axum::http::request::Parts>()?;
    Caller::of(&parts.extensions).session().cloned()
}

pub fn internal(e: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %e, "server function failed");
    ServerFnError::new("internal error")
}

/// The meters of the payer whose plan `decision` names: every limited feature (unlimited ones
/// have nothing to show).
pub async fn meters(
    state: &AppState,
    session: &Session,
    decision: &crate::billing::Decision,
) -> Result<Vec<crate::page_data::MeterView>, ServerFnError> {
    let report = state
        .usage()
        .report(
            crate::services::usage::Payer::of(session, decision),
            decision.plan.as_deref(),
            decision.period_start.zip(decision.period_end),
        )
        .await
        .map_err(internal)?;
    let resets = crate::billing::dates::day_in_words(report.period.end);
    Ok(report
        .features
        .into_iter()
        .filter_map(|f| {
            // A plan without the feature (a limit of 0) has nothing to meter.
            let limit = f.limit.filter(|l| *l > 0)?;
            Some(crate::page_data::MeterView {
                name: crate::billing::plans::feature_words(&f.feature),
                feature: f.feature,
                used: f.used,
                limit,
                resets: resets.clone(),
            })
        })
        .collect())
}

/// Where a past-due subscriber fixes their payment method.
pub fn fix_payment(state: &AppState) -> crate::page_data::FixPayment {
    match state.config().clerk() {
        Some(c) => crate::page_data::FixPayment::Portal(c.account_portal_url()),
        None => crate::page_data::FixPayment::DemoRecover,
    }
}

/// The signed-in person as the pages name them: their mail address where known, else the id.
pub async fn display_name(state: &AppState, session: &Session) -> Result<String, ServerFnError> {
    Ok(state
        .entitlements()
        .email(&session.user_id)
        .await
        .map_err(internal)?
        .unwrap_or_else(|| session.user_id.clone()))
}

/// One payer's billing for the billing page: plan, price, status and date in words, the
/// failure of a past-due payment, and the history.
pub async fn payer_billing(
    state: &AppState,
    kind: crate::billing::PayerKind,
    id: &str,
    heading: String,
) -> Result<crate::page_data::PayerBilling, ServerFnError> {
    use crate::billing::{
        dates::day_in_words,
        payments::{brand_words, date_line, failure_words, money, PaymentStatus},
        Status,
    };
    let b = crate::services::billing::Billing::of(state.db(), state.entitlements(), kind, id)
        .await
        .map_err(internal)?;
    let catalog = state.entitlements().catalog();
    let item = b.item.as_ref();
    let plan = item.and_then(|i| catalog.plan(&i.plan_slug));
    let annual = item
        .and_then(|i| i.period_end.zip(i.period_start))
        .is_some_and(|(e, s)| e - s > 40 * crate::billing::dates::DAY_MS);
    let price = plan.filter(|p| !p.is_free()).map(|p| {
        let cents = i64::from(p.price_cents(annual && p.annual_cents > 0));
        let per = if annual && p.annual_cents > 0 {
            "a year"
        } else {
            "a month"
        };
        format!("{} {per}", money(cents, "USD"))
    });
    let past_due = item.is_some_and(|i| i.status == Status::PastDue);
    let last_failure = b
        .payments
        .iter()
        .find(|p| p.status == PaymentStatus::Failed)
        .map(|p| failure_words(p.failed_code.as_deref()).to_string());
    Ok(crate::page_data::PayerBilling {
        heading,
        plan: match (plan, item) {
            (Some(p), _) => p.name.clone(),
            (None, Some(i)) => i.plan_name.clone().unwrap_or_else(|| i.plan_slug.clone()),
            (None, None) => "Free".into(),
        },
        price,
        status: item.map(|i| {
            if i.is_free_trial && i.status == Status::Active {
                "Free trial".to_string()
            } else {
                i.status.words().to_string()
            }
        }),
        date_line: item
            .and_then(|i| date_line(i.status, i.is_free_trial, i.period_end, i.past_due_at)),
        failure: past_due.then(|| last_failure.unwrap_or_else(|| failure_words(None).to_string())),
        paid: plan.is_some_and(|p| !p.is_free()),
        payments: b
            .payments
            .iter()
            .map(|p| crate::page_data::PaymentRow {
                date: day_in_words(p.at),
                amount: money(p.amount, &p.currency),
                status: p.status.words().to_string(),
                failed: p.status == PaymentStatus::Failed,
                card: p
                    .card
                    .as_ref()
                    .map(|c| format!("{} ending in {}", brand_words(&c.brand), c.last4)),
                failure: (p.status == PaymentStatus::Failed)
                    .then(|| failure_words(p.failed_code.as_deref()).to_string()),
            })
            .collect(),
    })
}

/// Why the payment of the payer whose plan `decision` names failed, in words (the payer as
/// metering picks it: `services::usage::Payer::of`).
pub async fn past_due_failure(
    state: &AppState,
    session: &Session,
    decision: &crate::billing::Decision,
) -> Result<String, ServerFnError> {
    let payer = crate::services::usage::Payer::of(session, decision);
    let b = payer_billing(state, payer.kind, &payer.id, String::new()).await?;
    Ok(b.failure
        .unwrap_or_else(|| crate::billing::payments::failure_words(None).to_string()))
}
