//! Server-side helpers of the server functions: the app state and the caller's session.

use leptos::prelude::*;

use crate::{
    auth::{Caller, Session},
    billing::{Access, Payer},
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

/// The caller's access through `gate`: the account their session answers for, the decision,
/// and who pays (as the API's `Gated` extractor resolves it).
pub async fn access(
    state: &AppState,
    session: &Session,
    gate: &str,
) -> Result<Access, ServerFnError> {
    state
        .entitlements()
        .access(session.account(), gate)
        .await
        .map_err(internal)
}

/// The meters of the payer an access names: every limited feature (unlimited ones have
/// nothing to show).
pub async fn meters(
    state: &AppState,
    access: &Access,
) -> Result<Vec<crate::page_data::MeterView>, ServerFnError> {
    let report = state.usage().report_for(access).await.map_err(internal)?;
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

/// One payer's billing for the billing page: the plan summary, the failure of a past-due
/// payment, and the history.
pub async fn payer_billing(
    state: &AppState,
    payer: &Payer,
    heading: String,
) -> Result<crate::page_data::PayerBilling, ServerFnError> {
    use crate::billing::{
        dates::day_in_words,
        payments::{brand_words, failure_words, money, PaymentStatus},
    };
    let b = crate::services::billing::Billing::of(state.db(), state.entitlements(), payer)
        .await
        .map_err(internal)?;
    let last_failure = b
        .payments
        .iter()
        .find(|p| p.status == PaymentStatus::Failed)
        .map(|p| failure_words(p.failed_code.as_deref()).to_string());
    let s = b.summary;
    Ok(crate::page_data::PayerBilling {
        heading,
        failure: s
            .past_due()
            .then(|| last_failure.unwrap_or_else(|| failure_words(None).to_string())),
        plan: s.name.unwrap_or_else(|| "Free".into()),
        price: s.price,
        status: s.status_words,
        date_line: s.date_line,
        paid: s.paid,
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

/// Why the payment of the payer an access names failed, in words.
pub async fn past_due_failure(state: &AppState, access: &Access) -> Result<String, ServerFnError> {
    let b = payer_billing(state, &access.payer, String::new()).await?;
    Ok(b.failure
        .unwrap_or_else(|| crate::billing::payments::failure_words(None).to_string()))
}
