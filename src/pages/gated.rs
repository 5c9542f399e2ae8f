//! `/dashboard/payment-gated`: decided during SSR. A request that is not entitled never
//! receives the premium markup; it gets the upgrade prompt with the pricing table instead.

use leptos::prelude::*;

use leptos_meta::Title;

use super::{billing::FixPaymentButton, pricing::PricingBlock};
use crate::{
    components::meters::{CallApi, Meters},
    page_data::Gated,
};

#[server]
pub async fn get_gated() -> Result<Gated, ServerFnError> {
    let state = crate::pages::server::state()?;
    let Some(session) = crate::pages::server::session(&state).await else {
        return Ok(Gated::SignedOut);
    };
    let access = crate::pages::server::access(&state, &session, "premium").await?;
    let d = &access.decision;
    let plan_name = crate::billing::PlanSummary::of(
        state.entitlements().catalog(),
        crate::billing::PlanFacts::of_decision(d),
    )
    .name;
    if !d.allowed
        && matches!(
            d.reason,
            "organization_not_allowed" | "reverification_required"
        )
    {
        // The plan opened it (billing's reason comes first): what is missing is not a plan,
        // so no pricing table and no payment banner.
        return Ok(Gated::NotAuthorized {
            reason: crate::billing::entitlement::reason_words(d.reason).to_string(),
            reverify: d.reason == "reverification_required",
        });
    }
    if !d.allowed && d.status == Some(crate::billing::Status::PastDue) {
        // Someone who pays: the way to fix the payment, never an upsell.
        return Ok(Gated::PastDue {
            plan: plan_name.unwrap_or_else(|| "your plan".into()),
            failure: crate::pages::server::past_due_failure(&state, &access).await?,
            fix: crate::pages::server::fix_payment(&state),
        });
    }
    if !d.allowed {
        return Ok(Gated::Upgrade {
            plan: plan_name,
            reason: crate::billing::entitlement::reason_words(d.reason).to_string(),
            pricing: super::pricing::get_pricing(false).await?,
        });
    }
    let meters = crate::pages::server::meters(&state, &access).await?;
    let plan = plan_name.unwrap_or_default();
    // The premium content itself: only ever built for an entitled caller.
    Ok(Gated::Premium {
        plan,
        meters,
        demo: state.demo().is_some(),
        report: vec![
            ("Monthly recurring revenue".into(), "$12,480".into()),
            ("Active subscribers".into(), "312".into()),
            ("Churn (30 days)".into(), "1.9%".into()),
        ],
    })
}

#[component]
pub fn PaymentGated() -> impl IntoView {
    let gated = Resource::new(|| (), |_| get_gated());
    view! {
        <Title text="Premium · plangate"/>
        <section>
            <Suspense fallback=|| view! { <p>"Checking your plan…"</p> }>
                {move || gated.get().map(|r| match r {
                    Ok(Gated::Premium { plan, report, meters, demo }) => view! {
                        <h1>"Premium insights"</h1>
                        <div class="card premium" data-testid="premium-content">
                            <p>{format!("Unlocked by your {plan} plan.")}</p>
                            // Explicit <tbody>: the HTML parser inserts one, and hydration must match.
                            <table><tbody>
                                {report.into_iter().map(|(k, v)| view! { <tr><th>{k}</th><td>{v}</td></tr> }).collect_view()}
                            </tbody></table>
                        </div>
                        <Meters meters=meters.clone()/>
                        {(demo && !meters.is_empty()).then(|| view! { <CallApi/> })}
                    }.into_any(),
                    Ok(Gated::SignedOut) => view! {
                        <h1>"Premium"</h1>
                        <p data-testid="upgrade-prompt">"Sign in and choose a plan to open this page. "<a href="/sign-in" rel="external">"Sign in"</a></p>
                    }.into_any(),
                    Ok(Gated::PastDue { plan, failure, fix }) => view! {
                        <h1>"Premium is paused"</h1>
                        <div class="banner warn" role="alert" data-testid="past-due-banner">
                            <p><strong>{format!("The last payment for your {plan} plan failed. ")}</strong>{failure}</p>
                            <p>"Update your payment method and premium access comes back as soon as the payment goes through."</p>
                            <FixPaymentButton fix=fix/>
                        </div>
                    }.into_any(),
                    Ok(Gated::NotAuthorized { reason, reverify }) => view! {
                        <h1>"Premium needs more than your plan"</h1>
                        <p data-testid="not-authorized">{reason}</p>
                        {if reverify {
                            view! { <p><a class="button primary" href="/sign-in" rel="external">"Sign in again"</a></p> }.into_any()
                        } else {
                            view! { <p>"Ask an administrator of your organization for the role this page needs, or switch to another organization."</p> }.into_any()
                        }}
                    }.into_any(),
                    Ok(Gated::Upgrade { plan, reason, pricing }) => view! {
                        <h1>"Upgrade to open Premium"</h1>
                        <p data-testid="upgrade-prompt">
                            {format!("{reason} Your plan: {}. Choose a plan that includes Premium:", plan.unwrap_or_else(|| "Free".into()))}
                        </p>
                        <PricingBlock data=pricing/>
                    }.into_any(),
                    Err(_) => view! { <p class="error">"Your plan could not be checked. Please retry."</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
