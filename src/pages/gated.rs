//! `/dashboard/payment-gated`: decided during SSR. A request that is not entitled never
//! receives the premium markup; it gets the upgrade prompt with the pricing table instead.

use leptos::prelude::*;

use super::pricing::{get_pricing, PricingBlock};
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
    let d = state
        .entitlements()
        .check(&session, "premium")
        .await
        .map_err(crate::pages::server::internal)?;
    if !d.allowed {
        return Ok(Gated::Upgrade {
            plan: d.plan,
            reason: d.reason.to_string(),
        });
    }
    let meters = crate::pages::server::meters(&state, &session, &d).await?;
    let plan = d.plan.unwrap_or_default();
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
    let pricing = Resource::new(|| (), |_| get_pricing(false));
    view! {
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
                    Ok(Gated::Upgrade { plan, reason }) => view! {
                        <h1>"Upgrade to open Premium"</h1>
                        <p data-testid="upgrade-prompt">
                            {format!("Your current plan ({}) does not include this page ({reason}). Choose a plan:", plan.unwrap_or_else(|| "free".into()))}
                        </p>
                        <Suspense fallback=|| ()>
                            {move || pricing.get().and_then(|p| p.ok()).map(|d| view! { <PricingBlock data=d/> })}
                        </Suspense>
                    }.into_any(),
                    Err(_) => view! { <p class="error">"Your plan could not be checked. Please retry."</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
