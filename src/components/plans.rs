//! The local pricing table (demo mode): plans from `plans.toml` with Subscribe / Switch /
//! Cancel buttons that post to the demo action endpoint.

use leptos::prelude::*;

use crate::{billing::Status, page_data::PricingView};

#[component]
pub fn LocalPricingTable(view_data: PricingView) -> impl IntoView {
    let current = view_data.current_plan.clone();
    let status = view_data.current_status;
    let signed_in = view_data.signed_in;
    let has_paid = view_data
        .plans
        .iter()
        .any(|p| !p.free && current.as_deref() == Some(p.slug.as_str()));
    let cards = view_data
        .plans
        .into_iter()
        .map(|p| {
            let is_current = current.as_deref() == Some(p.slug.as_str())
                || (p.free && !has_paid);
            let slug = p.slug.clone();
            let slug2 = p.slug.clone();
            let action = if !signed_in {
                view! { <a class="button" href="/sign-in" rel="external">"Sign in to subscribe"</a> }.into_any()
            } else if p.free {
                view! { <span class="muted">{if is_current { "Your plan" } else { "Included" }}</span> }.into_any()
            } else if is_current {
                let canceled = status == Some(Status::Canceled);
                view! {
                    <span class="badge">{if canceled { "Canceled — active until period end" } else { "Current plan" }}</span>
                    {(!canceled).then(|| view! {
                        <a class="button danger" href="/dashboard?confirm=cancel" data-testid="cancel">"Cancel subscription"</a>
                    })}
                    {canceled.then(|| view! {
                        <form method="post" action="/demo/action">
                            <input type="hidden" name="action" value="subscribe"/>
                            <input type="hidden" name="plan" value=slug2.clone()/>
                            <button type="submit" class="button">{format!("Resubscribe to {}", p.name)}</button>
                        </form>
                    })}
                }.into_any()
            } else {
                let label = if has_paid { "Switch" } else { "Subscribe" };
                let annual = p.annual.clone();
                let name = p.name.clone();
                let name2 = p.name.clone();
                let name3 = p.name.clone();
                let trial = (!has_paid && p.trial_days > 0).then_some(p.trial_days);
                let slug3 = p.slug.clone();
                view! {
                    <form method="post" action="/demo/action">
                        <input type="hidden" name="action" value="subscribe"/>
                        <input type="hidden" name="plan" value=slug.clone()/>
                        <input type="hidden" name="period" value="monthly"/>
                        <button type="submit" class="button primary" data-testid=format!("subscribe-{slug}")>
                            {format!("{label} to {name} monthly")}
                        </button>
                    </form>
                    {trial.map(|days| view! {
                        <form method="post" action="/demo/action">
                            <input type="hidden" name="action" value="trial"/>
                            <input type="hidden" name="plan" value=slug3.clone()/>
                            <button type="submit" class="button" data-testid=format!("trial-{slug3}")>
                                {format!("Start a {days}-day free trial of {name3}")}
                            </button>
                        </form>
                    })}
                    {annual.map(|_| view! {
                        <form method="post" action="/demo/action">
                            <input type="hidden" name="action" value="subscribe"/>
                            <input type="hidden" name="plan" value=slug.clone()/>
                            <input type="hidden" name="period" value="annual"/>
                            <button type="submit" class="button">{format!("{label} to {name2} annually")}</button>
                        </form>
                    })}
                }.into_any()
            };
            view! {
                <div class="plan" class:current=is_current data-plan=p.slug.clone()>
                    <h2>{p.name.clone()}</h2>
                    <p class="price">{p.monthly.clone()}<span class="per">" / month"</span></p>
                    {p.annual.clone().map(|a| view! { <p class="annual">{a}" / year billed annually"</p> })}
                    <p class="desc">{p.description.clone()}</p>
                    <ul class="features">
                        {p.features.iter().map(|f| view! { <li>{f.clone()}</li> }).collect_view()}
                    </ul>
                    <div class="plan-actions">{action}</div>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class="pricing-table" data-testid="local-pricing-table">{cards}</div>
        <p class="muted small">"Demo checkout: no card is asked for; each button sends the signed webhooks Clerk would send."</p>
    }
}
