//! `/`: the landing page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <Title text="plangate · premium, decided on the server"/>
        <section class="hero">
            <h1>"Premium, decided on the server."</h1>
            <p class="lead">
                "plangate sells subscriptions through Clerk Billing and opens premium pages and APIs only when the server has verified your session and your plan. Your card goes to Clerk and Stripe; this app never sees it."
            </p>
            <div class="actions">
                <a class="button primary" href="/pricing" rel="external">"See plans"</a>
                <A href="/dashboard" attr:class="button">"Go to your dashboard"</A>
            </div>
        </section>
        <section class="cards">
            <div class="card"><h2>"Verified tokens"</h2><p>"RS256 session tokens checked for issuer, party, expiry and session state on every request."</p></div>
            <div class="card"><h2>"Webhooks once"</h2><p>"Signed Clerk events stored exactly once and applied in order-safe transactions."</p></div>
            <div class="card"><h2>"No card data"</h2><p>"Only ids, plan, status and periods are stored."</p></div>
        </section>
    }
}
