//! `/dashboard`: plan, status, period end, the past-due banner, and "activating…" after a
//! checkout redirect until the webhook (or a refreshed token) shows the new plan.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

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
    let mut payers = vec![(crate::billing::PayerKind::User, session.user_id.as_str())];
    if let Some(org) = &session.org_id {
        payers.push((crate::billing::PayerKind::Org, org.as_str()));
    }
    let mut ran = false;
    for (kind, id) in payers {
        // Only a payer not yet paid here: a plain GET never spends the budget otherwise.
        if stored_paid(&state, kind, id).await? {
            continue;
        }
        ran |= reconciler.payer_after_checkout(kind, id).await;
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
    kind: crate::billing::PayerKind,
    id: &str,
) -> Result<bool, ServerFnError> {
    let item = state
        .entitlements()
        .current_plan(kind, id)
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
    let d = state
        .entitlements()
        .check(session, "premium")
        .await
        .map_err(crate::pages::server::internal)?;
    let plan_name = d.plan.as_deref().map(|slug| {
        state
            .entitlements()
            .catalog()
            .plan(slug)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| slug.to_string())
    });
    let paid = d
        .plan
        .as_deref()
        .and_then(|slug| state.entitlements().catalog().plan(slug))
        .is_some_and(|p| !p.is_free());
    let meters = crate::pages::server::meters(state, session, &d).await?;
    Ok(AccountView {
        signed_in: true,
        demo,
        user_id: session.user_id.clone(),
        org_id: session.org_id.clone(),
        plan: d.plan,
        plan_name,
        status: d.status,
        entitled: d.allowed,
        reason: d.reason.to_string(),
        source: d.source.as_str().to_string(),
        period_end: d.period_end.map(crate::page_data::format_date),
        access_until: d.until.map(crate::page_data::format_date),
        is_free_trial: d.is_free_trial,
        paid,
        meters,
    })
}

#[component]
fn DemoControls(status: Option<Status>) -> impl IntoView {
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
            <h3>"Demo billing"</h3>
            <p class="muted small">"Each button sends the signed Clerk webhooks of that step to this app."</p>
            {(status == Some(Status::Active)).then(|| button("fail_payment", "Simulate failed payment", "fail-payment"))}
            {(status == Some(Status::PastDue)).then(|| button("recover", "Simulate recovery", "recover"))}
            {matches!(status, Some(Status::Active | Status::PastDue)).then(|| button("cancel", "Cancel subscription", "cancel"))}
            {(status == Some(Status::Canceled)).then(|| view! {
                <p>"Canceled: access continues until the period ends. "<a href="/pricing" rel="external">"Resubscribe on the pricing page"</a></p>
            })}
        </div>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let query = use_query_map();
    let after_checkout = move || query.read().get("checkout").is_some();
    // Set by the "activating…" reload: the server may then ask Clerk directly.
    let waited = move || after_checkout() && query.read().get("waited").is_some();
    let account = Resource::new(waited, get_account);
    view! {
        <section>
            <h1>"Dashboard"</h1>
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
                                <div class="banner warn" data-testid="past-due-banner">
                                    "Your last payment failed. Stripe will retry it; please update your card. "
                                    {match (a.entitled, a.access_until.clone()) {
                                        (true, Some(u)) => format!("Premium access continues until {u}."),
                                        _ => "Premium access is paused until the payment succeeds.".to_string(),
                                    }}
                                </div>
                            })}
                            {(status == Some(Status::Canceled)).then(|| view! {
                                <div class="banner info" data-testid="canceled-banner">
                                    {format!("Your subscription is canceled and ends on {}.", a.period_end.clone().unwrap_or_else(|| "the end of the period".into()))}
                                </div>
                            })}
                            <div class="card account">
                                <dl>
                                    <dt>"Signed in as"</dt><dd data-testid="user-id">{a.user_id.clone()}</dd>
                                    <dt>"Plan"</dt><dd data-testid="plan">{a.plan_name.clone().unwrap_or_else(|| "Free".into())}</dd>
                                    <dt>"Status"</dt><dd data-testid="status">{status.map_or("none", Status::as_str)}</dd>
                                    <dt>"Period ends"</dt><dd data-testid="period-end">{a.period_end.clone().unwrap_or_else(|| "—".into())}</dd>
                                    <dt>"Premium access"</dt>
                                    <dd data-testid="entitled">{if a.entitled { "yes" } else { "no" }}</dd>
                                </dl>
                                <p class="muted small">{format!("Decided on the server from the {} ({}).", a.source, a.reason)}</p>
                            </div>
                            <Meters meters=a.meters.clone()/>
                            <p class="actions">
                                <a href="/dashboard/payment-gated" rel="external" class="button primary">"Open premium"</a>
                                <a class="button" href="/pricing" rel="external">"Change plan"</a>
                            </p>
                            {(a.demo && a.paid).then(|| view! { <DemoControls status=status/> })}
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
