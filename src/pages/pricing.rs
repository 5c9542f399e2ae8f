//! `/pricing`: Clerk's PricingTable from Clerk's scripts, or the local table in demo mode.
//! `?for=organization` shows organization plans.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    components::{clerk::ClerkMount, plans::LocalPricingTable},
    page_data::PricingView,
};

#[server]
pub async fn get_pricing(for_org: bool) -> Result<PricingView, ServerFnError> {
    use crate::{billing::PayerKind, page_data::PlanView};

    let state = crate::pages::server::state()?;
    let session = crate::pages::server::session(&state).await;
    let scope = if for_org {
        PayerKind::Org
    } else {
        PayerKind::User
    };
    let plans = state
        .entitlements()
        .catalog()
        .plans_for(scope)
        .map(|p| PlanView {
            slug: p.slug.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            monthly: super::format_money(p.monthly_cents),
            annual: (p.annual_cents > 0).then(|| super::format_money(p.annual_cents)),
            free: p.is_free(),
            trial_days: p.trial_days,
            features: p
                .features
                .iter()
                .map(|f| crate::billing::plans::feature_words(f))
                .collect(),
        })
        .collect();
    let (mut current_plan, mut current_status) = (None, None);
    if let Some(s) = &session {
        let plan = state
            .entitlements()
            .current_plan(&s.account().caller)
            .await
            .map_err(crate::pages::server::internal)?;
        if let Some(i) = plan {
            current_plan = Some(i.plan_slug);
            current_status = Some(i.status);
        }
    }
    Ok(PricingView {
        demo: state.demo().is_some(),
        for_org,
        signed_in: session.is_some(),
        current_plan,
        current_status,
        plans,
    })
}

/// The pricing table for either mode; also used by the upgrade prompt.
#[component]
pub fn PricingBlock(data: PricingView) -> impl IntoView {
    if data.demo {
        view! { <LocalPricingTable view_data=data/> }.into_any()
    } else {
        let for_ = if data.for_org { "organization" } else { "user" };
        view! { <ClerkMount kind="pricing" for_=for_.to_string()/> }.into_any()
    }
}

#[component]
pub fn Pricing() -> impl IntoView {
    let query = use_query_map();
    let for_org = move || query.read().get("for").as_deref() == Some("organization");
    let data = Resource::new(for_org, get_pricing);
    view! {
        <Title text="Plans · plangate"/>
        <section>
            <h1>"Plans"</h1>
            <p class="muted">
                {move || if for_org() { "Plans for your organization." } else { "Plans for you." }}
                " "
                {move || if for_org() {
                    view! { <a href="/pricing" rel="external">"Personal plans"</a> }.into_any()
                } else {
                    view! { <a href="/pricing?for=organization" rel="external">"Organization plans"</a> }.into_any()
                }}
            </p>
            <Suspense fallback=|| view! { <p>"Loading plans…"</p> }>
                {move || data.get().map(|r| match r {
                    Ok(d) => view! { <PricingBlock data=d/> }.into_any(),
                    Err(_) => view! { <p class="error">"Plans could not be loaded."</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
