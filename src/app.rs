//! The HTML shell, the `<App/>` component and its routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
};

use crate::components::clerk::{ClerkLoader, ClerkSignOut, DemoRefresher};
use crate::pages::{
    api_keys::ApiKeys,
    billing::Billing,
    dashboard::Dashboard,
    demo::{Events, Mailbox},
    gated::PaymentGated,
    home::Home,
    not_found::NotFound,
    pricing::Pricing,
    sign_in::SignIn,
    site_info,
};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let site = Resource::new(|| (), |_| site_info());
    view! {
        <Stylesheet id="leptos" href="/pkg/plangate.css"/>
        <Title text="plangate"/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <A href="/" attr:class="brand" attr:aria-label="plangate home">"plangate"</A>
                <nav>
                    <A href="/">"Home"</A>
                    <A href="/pricing" attr:rel="external">"Pricing"</A>
                    <A href="/dashboard" exact=true>"Dashboard"</A>
                    <A href="/dashboard/payment-gated" attr:rel="external">"Premium"</A>
                    <A href="/dashboard/billing">"Billing"</A>
                    <Suspense fallback=|| ()>
                        {move || site.get().map(|s| match s {
                            Ok(s) if s.signed_in => view! {
                                <span class="who" data-testid="who">{s.name.clone().or_else(|| s.user_id.clone()).unwrap_or_default()}</span>
                                {if s.demo {
                                    view! {
                                        <form method="post" action="/demo/sign-out" class="inline">
                                            <button type="submit" class="link">"Sign out"</button>
                                        </form>
                                        <DemoRefresher/>
                                    }.into_any()
                                } else {
                                    view! {
                                        <ClerkSignOut/>
                                    }.into_any()
                                }}
                                {s.clerk.map(|c| view! {
                                    <ClerkLoader publishable_key=c.publishable_key clerk_js_url=c.js_url clerk_ui_url=c.ui_url signed_in=true/>
                                })}
                            }.into_any(),
                            Ok(s) => view! {
                                <a href="/sign-in" rel="external">"Sign in"</a>
                                {s.clerk.map(|c| view! {
                                    <ClerkLoader publishable_key=c.publishable_key clerk_js_url=c.js_url clerk_ui_url=c.ui_url signed_in=false/>
                                })}
                            }.into_any(),
                            Err(_) => view! { <a href="/sign-in" rel="external">"Sign in"</a> }.into_any(),
                        })}
                    </Suspense>
                </nav>
            </header>
            <Suspense fallback=|| ()>
                {move || site.get().and_then(|s| s.ok()).filter(|s| s.demo).map(|_| view! {
                    <div class="demo-banner" role="status">
                        "Demo mode: no Clerk account configured. Sign-in, billing and webhooks are simulated locally through the production code path. "
                        <A href="/demo/mailbox">"Mailbox"</A>" · "<A href="/demo/events">"Events"</A>
                    </div>
                })}
            </Suspense>
            <main id="main">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Home ssr=SsrMode::Async/>
                    <Route path=path!("/pricing") view=Pricing ssr=SsrMode::Async/>
                    <Route path=path!("/sign-in") view=SignIn ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard") view=Dashboard ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard/payment-gated") view=PaymentGated ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard/billing") view=Billing ssr=SsrMode::Async/>
                    <Route path=path!("/dashboard/api-keys") view=ApiKeys ssr=SsrMode::Async/>
                    <Route path=path!("/demo/mailbox") view=Mailbox ssr=SsrMode::Async/>
                    <Route path=path!("/demo/events") view=Events ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer>"plangate · card details are taken by Clerk and Stripe, never by this app"</footer>
        </Router>
    }
}
