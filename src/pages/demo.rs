//! Demo-only pages: the mailbox (mail the outbox wrote under `data/mail/`) and the last webhook
//! events for the signed-in user. Outside demo mode their server functions refuse.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::page_data::{EventView, MailView};

#[server]
pub async fn demo_mailbox() -> Result<Vec<MailView>, ServerFnError> {
    let state = crate::pages::server::state()?;
    if state.demo().is_none() {
        return Err(ServerFnError::new("not found"));
    }
    // Each demo user reads their own mail only; signed out, there is none to read.
    let Some(email) = crate::pages::server::session(&state)
        .await
        .and_then(|s| crate::demo::email_of(&s.user_id))
    else {
        return Ok(Vec::new());
    };
    let mut mails = crate::mail::mailbox(&state.config().data_dir.join("mail")).await;
    mails.retain(|m| m.to.eq_ignore_ascii_case(&email));
    Ok(mails)
}

#[server]
pub async fn demo_events() -> Result<Vec<EventView>, ServerFnError> {
    let state = crate::pages::server::state()?;
    if state.demo().is_none() {
        return Err(ServerFnError::new("not found"));
    }
    let Some(session) = crate::pages::server::session(&state).await else {
        return Ok(Vec::new());
    };
    // The user's own deliveries only, dead letters first (another user's never show).
    let mut rows = state
        .inbox()
        .recent(&session.user_id, 50)
        .await
        .map_err(crate::pages::server::internal)?;
    rows.sort_by_key(|r| r.outcome != "failed");
    Ok(rows
        .into_iter()
        .map(|r| EventView {
            failed: r.outcome == "failed",
            reason: r.reason,
            svix_id: r.svix_id,
            event_type: r.event_type,
            received: crate::billing::dates::time_in_words(r.received_at),
            outcome: match r.duplicates {
                0 => r.outcome,
                n => format!(
                    "{} (+{n} duplicate{})",
                    r.outcome,
                    if n == 1 { "" } else { "s" }
                ),
            },
        })
        .collect())
}

#[component]
pub fn Mailbox() -> impl IntoView {
    let mails = Resource::new(|| (), |_| demo_mailbox());
    view! {
        <Title text="Demo mailbox · plangate"/>
        <section>
            <h1>"Demo mailbox"</h1>
            <p class="muted">"Your mail, as the outbox wrote it to data/mail/ (set SMTP_URL to send real mail)."</p>
            <Suspense fallback=|| ()>
                {move || mails.get().map(|r| match r {
                    Ok(list) if list.is_empty() => view! { <p data-testid="mail-empty">"No mail yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="mails">
                            {list.into_iter().map(|m| view! {
                                <li class="mail" data-testid="mail">
                                    <strong>{m.subject}</strong>" → "{m.to}
                                    <pre>{m.body}</pre>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(_) => view! { <crate::pages::not_found::NotFound/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
pub fn Events() -> impl IntoView {
    let events = Resource::new(|| (), |_| demo_events());
    view! {
        <Title text="Webhook events · plangate"/>
        <section>
            <h1>"Webhook events"</h1>
            <p class="muted">"The last events received for you, and what became of each."</p>
            <Suspense fallback=|| ()>
                {move || events.get().map(|r| match r {
                    Ok(list) => view! {
                        <div class="table-wrap" tabindex="0" role="region" aria-label="Webhook events"><table class="events">
                            <thead><tr><th scope="col">"Type"</th><th scope="col">"svix-id"</th><th scope="col">"Received"</th><th scope="col">"Outcome"</th></tr></thead>
                            <tbody>
                            {list.into_iter().map(|e| {
                                let replay = e.failed.then(|| view! {
                                    <form method="post" action="/demo/replay" class="inline">
                                        <input type="hidden" name="svix_id" value=e.svix_id.clone()/>
                                        <button type="submit" class="button" data-testid="replay">"Replay"</button>
                                    </form>
                                });
                                view! {
                                    <tr data-testid="event" class:failed=e.failed>
                                        <td>{e.event_type}</td><td><code>{e.svix_id}</code></td><td>{e.received}</td>
                                        <td>{e.outcome}{e.reason.map(|r| view! { <div class="muted small" data-testid="reason">{r}</div> })}{replay}</td>
                                    </tr>
                                }
                            }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                    Err(_) => view! { <crate::pages::not_found::NotFound/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
