//! `/dashboard/api-keys`: where customers make the API keys their programs call the metered API
//! with (README, "API keys"). With Clerk: Clerk's own API-keys component, mounted from Clerk's
//! scripts as the pricing table is. In demo mode: make a key (its secret shown once), list,
//! revoke; the keys are verified through the same request and cache as Clerk's.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{components::clerk::ClerkMount, page_data::ApiKeysView};

#[server]
pub async fn get_api_keys(created: Option<String>) -> Result<ApiKeysView, ServerFnError> {
    use crate::page_data::ApiKeyRow;
    let state = crate::pages::server::state()?;
    let app = state.config().app_url.trim_end_matches('/').to_string();
    let mut view = ApiKeysView {
        demo: state.demo().is_some(),
        api_url: format!("{app}/api/premium-feature"),
        probe_url: format!("{app}/api/gates/premium"),
        ..Default::default()
    };
    let Some(session) = crate::pages::server::session(&state).await else {
        return Ok(view);
    };
    view.signed_in = true;
    if let Some(keys) = state.demo_keys() {
        let when = |ms: i64| crate::billing::dates::day_in_words(ms);
        view.new_secret = created.and_then(|id| keys.take_fresh(&id, &session.user_id));
        view.keys = keys
            .list(&session.user_id)
            .await
            .map_err(crate::pages::server::internal)?
            .into_iter()
            .map(|k| ApiKeyRow {
                id: k.id,
                name: k.name,
                hint: k.hint,
                created: when(k.created_at),
                revoked: k.revoked_at.map(when),
            })
            .collect();
    }
    Ok(view)
}

#[component]
fn DemoKeys(view: ApiKeysView) -> impl IntoView {
    let ApiKeysView {
        keys,
        new_secret,
        api_url,
        probe_url,
        ..
    } = view;
    let example = new_secret.clone().unwrap_or_else(|| "ak_demo_…".into());
    view! {
        {new_secret.map(|secret| view! {
            <div class="banner info" role="status" data-testid="new-key">
                <p><strong>"Your new key. "</strong>"Copy it now: it is shown only this once (only its hash is kept)."</p>
                <p><code data-testid="new-secret">{secret}</code></p>
            </div>
        })}
        <section class="card" aria-labelledby="make-key">
            <h2 id="make-key">"Make a key"</h2>
            <form method="post" action="/demo/api-keys" class="stack">
                <label for="key-name">"Name"</label>
                <input id="key-name" name="name" required=true maxlength="60" placeholder="My server"/>
                <button type="submit" class="button primary" data-testid="create-key">"Create key"</button>
            </form>
        </section>
        <section class="card" aria-labelledby="try-key">
            <h2 id="try-key">"Call the API with it"</h2>
            <p>"Each call spends one unit of your plan's premium API calls, exactly as in the browser; the gate probe spends nothing:"</p>
            <pre data-testid="curl"><code>{format!("curl -i -H \"Authorization: Bearer {example}\" {api_url}\ncurl -H \"Authorization: Bearer {example}\" {probe_url}")}</code></pre>
        </section>
        <section class="card" aria-labelledby="your-keys">
            <h2 id="your-keys">"Your keys"</h2>
            {if keys.is_empty() {
                view! { <p data-testid="no-keys">"No keys yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0" role="region" aria-label="Key list">
                        <table data-testid="keys">
                            <thead><tr>
                                <th scope="col">"Name"</th><th scope="col">"Key"</th>
                                <th scope="col">"Made"</th><th scope="col">"State"</th>
                            </tr></thead>
                            <tbody>
                                {keys.into_iter().map(|k| {
                                    let action = format!("/demo/api-keys/{}/revoke", k.id);
                                    view! {
                                        <tr data-testid="key">
                                            <td>{k.name}</td>
                                            <td><code>{k.hint}</code></td>
                                            <td>{k.created}</td>
                                            <td>{match k.revoked {
                                                Some(when) => view! { <span>{format!("Revoked on {when}")}</span> }.into_any(),
                                                None => view! {
                                                    <form method="post" action=action class="inline">
                                                        <button type="submit" class="button" data-testid="revoke-key">"Revoke"</button>
                                                    </form>
                                                }.into_any(),
                                            }}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
pub fn ApiKeys() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(move || query.with(|q| q.get("created")), get_api_keys);
    view! {
        <Title text="API keys · plangate"/>
        <section>
            <h1>"API keys"</h1>
            <p>"Programs call the metered API with a key instead of a session: the key opens your plan's gates and spends your plan's units. A revoked key stops working within 10 seconds."</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || data.get().map(|r| match r {
                    Err(_) => view! { <p class="error">"Your keys could not be loaded. Please retry."</p> }.into_any(),
                    Ok(v) if !v.signed_in => view! {
                        <p>"You are signed out. "<a href="/sign-in" rel="external">"Sign in"</a>" to manage your API keys."</p>
                    }.into_any(),
                    Ok(v) if v.demo => view! { <DemoKeys view=v/> }.into_any(),
                    Ok(_) => view! { <ClerkMount kind="api-keys"/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
