//! `/sign-in`: Clerk's SignIn, or a demo user picker in demo mode.

use leptos::prelude::*;
use leptos_meta::Title;

#[server]
pub async fn get_pricing_for_sign_in() -> Result<crate::page_data::PricingView, ServerFnError> {
    super::pricing::get_pricing(false).await
}

#[component]
pub fn SignIn() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_pricing_for_sign_in());
    view! {
        <Title text="Sign in · plangate"/>
        <section class="narrow">
            <h1>"Sign in"</h1>
            <Suspense fallback=|| ()>
                {move || data.get().map(|r| match r {
                    Ok(d) if d.demo => view! {
                        <p>"Demo mode: pick a demo user or type a name. A Clerk-shaped session token is minted by this app's local issuer."</p>
                        <div class="demo-users">
                            {["alice", "bob", "operator"].into_iter().map(|n| view! {
                                <form method="post" action="/demo/sign-in" class="inline">
                                    <input type="hidden" name="name" value=n/>
                                    <button type="submit" class="button">{format!("Continue as {n}")}</button>
                                </form>
                            }).collect_view()}
                        </div>
                        <form method="post" action="/demo/sign-in" class="stack">
                            <label for="demo-name">"Name"</label>
                            <input id="demo-name" name="name" required=true maxlength="32" pattern="[A-Za-z0-9_\\-]+" title="Letters, digits, _ and - only" placeholder="e.g. carol"/>
                            <button type="submit" class="button primary">"Sign in"</button>
                        </form>
                    }.into_any(),
                    Ok(_) => view! { <crate::components::clerk::ClerkMount kind="sign-in"/> }.into_any(),
                    Err(_) => view! { <p class="error">"Sign-in is unavailable right now."</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
