//! `/dashboard`: plan, status, period end, the past-due banner, and "activating…" after a
//! checkout redirect until the webhook (or a refreshed token) shows the new plan.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use leptos_meta::Title;

use super::billing::FixPaymentButton;
use crate::{
    billing::Status,
    components::{clerk::InlineScript, meters::Meters},
    page_data::AccountView,
};

/// The signed-in account. `reconcile`: the page has shown "activating…" for a while after a
/// checkout and the plan is still not paid, so the payer is reconciled from Clerk's Backend API
/// now (at most once per payer every few seconds) rather than waiting for the webhook.
#[server]
pub async fn get_account(reconcile: bool) -> Result<AccountView, ServerFnError> {
    let state = crate::pages::server::state()?;
    let demo = state.demo().is_some();
    let Some(session) = crate::pages::server::session(&state).await else {
        return Ok(AccountView {
            demo,
            ..Default::default()
        });
    };
    let view = account(&state, &session, demo).await?;
    if !reconcile || view.paid {
        return Ok(view);
    }
    let Some(reconciler) = state.reconciler() else {
        return Ok(view);
    };
    let mut ran = false;
    for payer in session.account().payers() {
        // Only a payer not yet paid here: a plain GET never spends the budget otherwise.
        if stored_paid(&state, payer).await? {
            continue;
        }
        ran |= reconciler.payer_after_checkout(payer).await;
    }
    if ran {
        account(&state, &session, demo).await
    } else {
        Ok(view)
    }
}

/// Whether the payer's stored state is a live paid plan.
#[cfg(feature = "ssr")]
async fn stored_paid(
    state: &crate::state::AppState,
    payer: &crate::billing::Payer,
) -> Result<bool, ServerFnError> {
    let item = state
        .entitlements()
        .current_plan(payer)
        .await
        .map_err(crate::pages::server::internal)?;
    Ok(item.is_some_and(|i| {
        state
            .entitlements()
            .catalog()
            .plan(&i.plan_slug)
            .is_none_or(|p| !p.is_free())
    }))
}

#[cfg(feature = "ssr")]
async fn account(
    state: &crate::state::AppState,
    session: &crate::auth::Session,
    demo: bool,
) -> Result<AccountView, ServerFnError> {
    use crate::billing::{PlanFacts, PlanSummary};
    let access = crate::pages::server::access(state, session, "premium").await?;
    let summary = PlanSummary::of(
        state.entitlements().catalog(),
        PlanFacts::of_decision(&access.decision),
    );
    let meters = crate::pages::server::meters(state, &access).await?;
    let past_due = summary.past_due();
    let failure = if past_due {
        Some(crate::pages::server::past_due_failure(state, &access).await?)
    } else {
        None
    };
    let d = access.decision;
    Ok(AccountView {
        status_words: summary.status_words,
        reason_words: crate::billing::entitlement::reason_words(d.reason).to_string(),
        // Past due: the banner says what happened and what to do instead.
        date_line: summary.date_line.filter(|_| !past_due),
        name: crate::pages::server::display_name(state, session).await?,
        failure: failure.clone(),
        fix: failure.map(|_| crate::pages::server::fix_payment(state)),
        signed_in: true,
        demo,
        user_id: session.user_id.clone(),
        org_id: session.org_id.clone(),
        plan: d.plan,
        plan_name: summary.name,
        status: d.status,
        entitled: d.allowed,
        reason: d.reason.to_string(),
        source: d.source.as_str().to_string(),
        period_end: d.period_end.map(crate::billing::dates::day_in_words),
        access_until: d.until.map(crate::billing::dates::day_in_words),
        is_free_trial: d.is_free_trial,
        paid: summary.paid,
        meters,
    })
}

#[component]
fn DemoControls(status: Option<Status>, confirm_cancel: bool, trial: bool) -> impl IntoView {
    let button = |action: &'static str, label: &'static str, testid: &'static str| {
        view! {
            <form method="post" action="/demo/action" class="inline">
                <input type="hidden" name="action" value=action/>
                <button type="submit" class="button" data-testid=testid>{label}</button>
            </form>
        }
    };
    view! {
        <div class="card demo-controls">
            <h2>"Demo billing"</h2>
            <p class="muted small">"Each button sends the signed Clerk webhooks of that step to this app."</p>
            {(status == Some(Status::Active) && trial).then(|| button("trial_ending", "Simulate the trial-ending reminder", "trial-ending"))}
            {(status == Some(Status::Active) && !trial).then(|| button("fail_payment", "Simulate failed payment", "fail-payment"))}
            {(status == Some(Status::PastDue)).then(|| button("recover", "Simulate recovery", "recover"))}
            {(matches!(status, Some(Status::Active | Status::PastDue)) && !confirm_cancel).then(|| view! {
                <a class="button danger" href="/dashboard?confirm=cancel" data-testid="cancel">"Cancel subscription"</a>
            })}
            {(matches!(status, Some(Status::Active | Status::PastDue)) && confirm_cancel).then(|| view! {
                <div class="banner warn" role="alertdialog" aria-labelledby="confirm-cancel" data-testid="confirm-cancel">
                    <p id="confirm-cancel"><strong>"Cancel your subscription?"</strong>" You keep access until the end of the period you paid for; after that the plan ends."</p>
                    <form method="post" action="/demo/action" class="inline">
                        <input type="hidden" name="action" value="cancel"/>
                        <input type="hidden" name="confirm" value="yes"/>
                        <button type="submit" class="button danger" data-testid="confirm-cancel-yes">"Yes, cancel my subscription"</button>
                    </form>
                    " "
                    <a class="button" href="/dashboard">"Keep my plan"</a>
                </div>
            })}
            {(status == Some(Status::Canceled)).then(|| view! {
                <p>"Canceled: access continues until the period ends. "<a href="/pricing" rel="external">"Resubscribe on the pricing page"</a></p>
            })}
        </div>
    }
}

/// The notice after a billing action (`?notice=`): fixed words for known actions only, so a
/// link cannot put text of its own on the page.
pub fn notice_words(code: &str) -> Option<&'static str> {
    Some(match code {
        "subscribed" => "Thank you: your subscription is active.",
        "canceled" => "Your subscription is canceled. You keep access until the end of the period.",
        "payment_failed" => "Demo: the next payment failed.",
        "trial_started" => "Your free trial has started. No charge until it ends.",
        "trial_ending" => {
            "Demo: Clerk sent the reminder that your trial ends soon (see the mailbox)."
        }
        "recovered" => "Your payment method works again: the overdue payment went through.",
        _ => return None,
    })
}

#[component]
pub fn Notice() -> impl IntoView {
    let query = use_query_map();
    move || {
        query
            .read()
            .get("notice")
            .and_then(|c| notice_words(&c))
            .map(
                |w| view! { <div class="banner info" role="status" data-testid="notice">{w}</div> },
            )
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let query = use_query_map();
    let after_checkout = move || query.read().get("checkout").is_some();
    // Set by the "activating…" reload: the server may then ask Clerk directly.
    let waited = move || after_checkout() && query.read().get("waited").is_some();
    let confirm_cancel = move || query.read().get("confirm").as_deref() == Some("cancel");
    let account = Resource::new(waited, get_account);
    view! {
        <Title text="Dashboard · plangate"/>
        <section>
            <h1>"Dashboard"</h1>
            <Notice/>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || account.get().map(|r| match r {
                    Err(_) => view! { <p class="error">"Your account could not be loaded. Please retry."</p> }.into_any(),
                    Ok(a) if !a.signed_in => view! {
                        <p>"You are signed out. "<a href="/sign-in" rel="external">"Sign in"</a>" to see your plan."</p>
                    }.into_any(),
                    Ok(a) => {
                        let status = a.status;
                        let activating = after_checkout() && !a.paid;
                        view! {
                            {activating.then(|| view! {
                                <div class="banner info" data-testid="activating">
                                    "Activating your subscription… this page checks again in a moment."
                                </div>
                                // Refresh the session token through clerk-js (the new plan shows in `pla`), then re-check.
                                <InlineScript code="setTimeout(function () { (window.__plangateClerk || Promise.resolve()).then(function () { return window.Clerk && window.Clerk.session && window.Clerk.session.getToken({ skipCache: true }); }).catch(function () {}).then(function () { var u = new URL(location.href); u.searchParams.set(\'waited\', String(Number(u.searchParams.get(\'waited\') || 0) + 1)); location.replace(u.toString()); }); }, 2500);"/>
                            })}
                            {(status == Some(Status::PastDue)).then(|| view! {
                                <div class="banner warn" role="alert" data-testid="past-due-banner">
                                    <p>
                                        <strong>"Your last payment failed. "</strong>
                                        {a.failure.clone().unwrap_or_default()}" "
                                        {match (a.entitled, a.access_until.clone()) {
                                            (true, Some(u)) => format!("Premium access continues until {u} while Stripe retries the charge."),
                                            _ => "Premium access is paused until the payment succeeds.".to_string(),
                                        }}
                                    </p>
                                    {a.fix.clone().map(|fix| view! { <FixPaymentButton fix=fix/> })}
                                </div>
                            })}
                            {(status == Some(Status::Canceled)).then(|| view! {
                                <div class="banner info" data-testid="canceled-banner">
                                    {format!("Your subscription is canceled and ends on {}.", a.period_end.clone().unwrap_or_else(|| "the end of the period".into()))}
                                </div>
                            })}
                            <div class="card account">
                                <dl>
                                    <dt>"Signed in as"</dt><dd data-testid="user-id">{a.name.clone()}</dd>
                                    <dt>"Plan"</dt><dd data-testid="plan">{a.plan_name.clone().unwrap_or_else(|| "Free".into())}</dd>
                                    <dt>"Status"</dt><dd data-testid="status">{a.status_words.clone().unwrap_or_else(|| "No subscription".into())}</dd>
                                    {a.date_line.clone().map(|d| view! { <dt>"Next"</dt><dd data-testid="date-line">{d}</dd> })}
                                    <dt>"Period ends"</dt><dd data-testid="period-end">{a.period_end.clone().unwrap_or_else(|| "—".into())}</dd>
                                    <dt>"Premium access"</dt>
                                    <dd data-testid="entitled">{if a.entitled { "yes" } else { "no" }}</dd>
                                </dl>
                                <p class="muted small">{a.reason_words.clone()}</p>
                            </div>
                            <Meters meters=a.meters.clone()/>
                            <p class="actions">
                                {(status != Some(Status::PastDue)).then(|| view! {
                                    <a href="/dashboard/payment-gated" rel="external" class="button primary">"Open premium"</a>
                                })}
                                <a class="button" href="/dashboard/billing">"Billing and payments"</a>
                                <a class="button" href="/dashboard/api-keys" data-testid="api-keys-link">"API keys"</a>
                                {(status != Some(Status::PastDue)).then(|| view! {
                                    <a class="button" href="/pricing" rel="external">"Change plan"</a>
                                })}
                            </p>
                            {(a.demo && a.paid).then(|| view! { <DemoControls status=status confirm_cancel=confirm_cancel() trial=a.is_free_trial/> })}
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
