//! The operator console's views (README, "Operator console"): whole documents rendered on
//! the server without scripts (the app's CSP, no hydration), from what `services::console`
//! read. The routes, the operators-only layer and the actions are `http::admin`'s.

use leptos::prelude::*;

use crate::{
    billing::{operator::rfc3339, operator::AuditEntry, PlanSummary, Status},
    db::{console::FoundPayer, inbox::EventRow},
    services::console::{Overview, PayerView, UsageRow},
};

/// The start page: the search, what it found, and the counts at a glance.
pub fn home(
    q: &str,
    found: Vec<FoundPayer>,
    overview: &Overview,
    notice: Option<AnyView>,
) -> AnyView {
    let q = q.to_string();
    view! {
        <h1>"Operator console"</h1>
        {notice}
        <form method="get" action="/admin" class="stack" role="search">
            <label for="q">"Find a payer by user id, organization id or email"</label>
            <input id="q" name="q" value=q.clone() required=true maxlength="200" autocomplete="off"/>
            <button type="submit" class="button primary">"Find"</button>
        </form>
        {(!q.is_empty()).then(|| found_list(&q, found))}
        <div class="card">
            <h2>"At a glance"</h2>
            <dl>
                <dt>"Dead letters"</dt>
                <dd data-testid="dead-letters"><a href="/admin/dead-letters">{overview.dead_letters}</a></dd>
                <dt>"Mail waiting to be sent"</dt>
                <dd data-testid="pending-mail">{overview.pending_mail}</dd>
                <dt>"Last reconciliation sweep"</dt>
                <dd data-testid="last-sweep">{match (&overview.last_sweep, overview.sweep_enabled) {
                    (Some((at, result)), _) => format!("{} — {result}", rfc3339(*at)),
                    (None, true) => "none yet".to_string(),
                    (None, false) => "off (no CLERK_SECRET_KEY)".to_string(),
                }}</dd>
            </dl>
        </div>
        <p><a href="/admin/audit">"Audit log"</a></p>
    }
    .into_any()
}

/// Deliveries that could not be applied, each with its replay form.
pub fn dead_letters(
    rows: &[EventRow],
    tokens: &mut impl Iterator<Item = String>,
    notice: Option<AnyView>,
) -> AnyView {
    let empty = rows.is_empty();
    let rows = rows
        .iter()
        .map(|d| delivery_row(d, tokens.next(), "/admin/dead-letters"))
        .collect_view();
    view! {
        <h1>"Dead letters"</h1>
        {notice}
        <p>"Deliveries that could not be applied, with the reason. Replaying one applies it again through the inbox (the ordering rule still decides)."</p>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Dead letters"><table>
            <thead><tr><th scope="col">"Received"</th><th scope="col">"Svix id"</th><th scope="col">"Type"</th><th scope="col">"Outcome"</th><th scope="col">"Replay"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {empty.then(|| view! { <p data-testid="no-dead-letters">"No dead letters."</p> })}
    }
    .into_any()
}

/// Every console action, newest first.
pub fn audit(rows: Vec<AuditEntry>) -> AnyView {
    let empty = rows.is_empty();
    let rows = rows
        .into_iter()
        .map(|e| {
            view! {
                <tr data-testid="audit-row"><td>{rfc3339(e.at)}</td><td>{e.operator}</td><td>{e.action}</td>
                <td><code>{e.target}</code></td><td>{e.params}</td><td>{e.result}</td></tr>
            }
        })
        .collect_view();
    view! {
        <h1>"Audit log"</h1>
        <p>"Every console action, newest first, whatever its result. Also: "<code>"plangate audit --limit 50"</code>"."</p>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Audit log"><table>
            <thead><tr><th scope="col">"Time"</th><th scope="col">"Operator"</th><th scope="col">"Action"</th><th scope="col">"Target"</th><th scope="col">"Parameters"</th><th scope="col">"Result"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {empty.then(|| view! { <p>"No actions yet."</p> })}
    }
    .into_any()
}

/// After an action: the operator's latest audit row, in words.
pub fn notice(e: AuditEntry) -> AnyView {
    let class = if e.result.starts_with("done") {
        "banner info"
    } else {
        "banner warn"
    };
    view! {
        <div class=class role="status" data-testid="notice">
            {format!("{} {}: {}", e.action, e.target, e.result)}
        </div>
    }
    .into_any()
}

/// A refused action, for a browser.
pub fn nothing_done(code: &'static str, message: &str, back: &str) -> AnyView {
    let back = back.to_string();
    view! {
        <h1>"Nothing was done"</h1>
        <p class="error" data-code=code>{format!("{message} ({code})")}</p>
        <p><a href=back>"Back to the console"</a></p>
    }
    .into_any()
}

/// `reverification_required`, for a browser: the way to sign in again (the demo operator's
/// button in demo mode).
pub fn sign_in_again(message: &str, demo: bool, back: &str) -> AnyView {
    let back = back.to_string();
    view! {
        <h1>"Sign in again to act"</h1>
        <p data-code="reverification_required">{format!("{message} (reverification_required).")}</p>
        {if demo {
            view! {
                <form method="post" action="/demo/sign-in">
                    <input type="hidden" name="name" value="operator"/>
                    <input type="hidden" name="next" value=back.clone()/>
                    <button type="submit" class="button primary">"Sign in again as the demo operator"</button>
                </form>
            }.into_any()
        } else {
            view! { <p><a class="button primary" href="/sign-in">"Sign in again"</a></p> }.into_any()
        }}
        <p><a href=back>"Back to the console"</a></p>
    }
    .into_any()
}

fn found_list(q: &str, found: Vec<FoundPayer>) -> AnyView {
    if found.is_empty() {
        return view! { <p data-testid="no-match">{format!("No payer matches “{q}”.")}</p> }
            .into_any();
    }
    view! {
        <ul class="found" data-testid="found">
            {found.into_iter().map(|p| {
                let href = format!("/admin/payers/{}/{}", p.payer.kind.as_str(), p.payer.id);
                view! {
                    <li><a href=href>{format!("{} {}", p.payer.kind.as_str(), p.payer.id)}</a>
                    {p.email.map(|e| format!(" · {e}"))}</li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

/// A console form: its action, the one-time token, where to come back to, and the fields.
fn form(
    action: String,
    token: Option<String>,
    back: &str,
    fields: AnyView,
    label: String,
    class: &'static str,
) -> impl IntoView {
    view! {
        <form method="post" action=action class="inline">
            <input type="hidden" name="form_token" value=token.unwrap_or_default()/>
            <input type="hidden" name="back" value=back.to_string()/>
            {fields}
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

pub fn payer(
    v: &PayerView,
    here: &str,
    tokens: &mut impl Iterator<Item = String>,
    metered: Vec<String>,
    clerk: bool,
) -> impl IntoView {
    let base = format!("/admin/payers/{}/{}", v.payer.kind.as_str(), v.payer.id);
    let items = v
        .items
        .iter()
        .map(|i| {
            let current = v.current.as_deref() == Some(i.id.as_str());
            let live = matches!(
                i.status,
                Status::Active | Status::PastDue | Status::Canceled
            );
            let actions = (clerk && live).then(|| {
                let cancel = format!("/admin/items/{}/cancel", i.id);
                let later = (i.status != Status::Canceled).then(|| {
                    form(
                        cancel.clone(),
                        tokens.next(),
                        here,
                        view! { <input type="hidden" name="end_now" value="false"/> }.into_any(),
                        "Cancel at period end".into(),
                        "button",
                    )
                });
                let now = form(
                    cancel,
                    tokens.next(),
                    here,
                    view! { <input type="hidden" name="end_now" value="true"/> }.into_any(),
                    "Cancel now".into(),
                    "button danger",
                );
                let trial = i.is_free_trial.then(|| {
                    let to =
                        rfc3339(i.period_end.unwrap_or_else(crate::db::now_ms) + 7 * 86_400_000);
                    let field_id = format!("extend-{}", i.id);
                    form(
                        format!("/admin/items/{}/extend-trial", i.id),
                        tokens.next(),
                        here,
                        view! {
                            <label for=field_id.clone()>"New trial end (RFC 3339)"</label>
                            <input id=field_id name="extend_to" value=to required=true/>
                        }
                        .into_any(),
                        "Extend trial".into(),
                        "button",
                    )
                });
                view! { {later} {now} {trial} }
            });
            view! {
                <tr data-testid="item">
                    <td>{i.plan_name.clone().unwrap_or_else(|| i.plan_slug.clone())}
                        {current.then_some(" (current)")}</td>
                    <td>{i.status.as_str()}{i.is_free_trial.then_some(" · free trial")}</td>
                    <td>{period(i.period_start, i.period_end)}</td>
                    <td>{rfc3339(i.event_at)}</td>
                    <td><code>{i.id.clone()}</code></td>
                    <td class="actions">{actions}</td>
                </tr>
            }
        })
        .collect_view();
    let reconcile = form(
        format!("{base}/reconcile"),
        tokens.next(),
        here,
        ().into_any(),
        "Reconcile from Clerk".into(),
        "button",
    );
    let grant_token = tokens.next();
    let grant = (!metered.is_empty()).then(|| {
        form(
            format!("{base}/grant"),
            grant_token,
            here,
            view! {
                <label for="grant-feature">"Feature"</label>
                <select id="grant-feature" name="feature">
                    {metered.into_iter().map(|f| view! { <option value=f.clone()>{f.clone()}</option> }).collect_view()}
                </select>
                <label for="grant-units">"Extra units this period"</label>
                <input id="grant-units" name="units" inputmode="numeric" pattern="[0-9]{1,7}" required=true/>
            }
            .into_any(),
            "Grant units".into(),
            "button",
        )
    });
    let deliveries = v
        .deliveries
        .iter()
        .map(|d| delivery_row(d, tokens.next(), here))
        .collect_view();
    let payments = v
        .payments()
        .map(|d| {
            view! {
                <tr><td>{rfc3339(d.event_at)}</td><td>{d.event_type.clone()}</td><td>{d.outcome.clone()}</td><td><code>{d.svix_id.clone()}</code></td></tr>
            }
        })
        .collect_view();
    let mail = v
        .mail
        .iter()
        .map(|m| {
            view! {
                <tr><td>{rfc3339(m.created_at)}</td><td>{m.subject.clone()}</td><td>{m.recipient.clone()}</td>
                <td data-testid="mail-status">{m.status.clone()}{m.sent_at.map(|s| format!(" {}", rfc3339(s)))}
                {(m.status != "sent").then(|| m.last_error.clone()).flatten().map(|e| format!(": {e}"))}</td></tr>
            }
        })
        .collect_view();
    let usage = v.usage.iter().map(usage_row).collect_view();
    view! {
        <h1>{format!("Payer {} {}", v.payer.kind.as_str(), v.payer.id)}</h1>
        <p data-testid="plan-summary">{plan_line(&v.summary)}</p>
        <p>{v.email.clone().map_or_else(|| "No mail address on record.".to_string(), |e| format!("Mail: {e}"))}</p>
        <p class="actions">{reconcile}</p>
        {(!clerk).then(|| view! { <p class="muted">"Cancel and extend need CLERK_SECRET_KEY (Clerk's Backend API)."</p> })}
        <h2>"Subscription items"</h2>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Subscription items"><table>
            <thead><tr><th scope="col">"Plan"</th><th scope="col">"Status"</th><th scope="col">"Period"</th><th scope="col">"Evidence time"</th><th scope="col">"Item"</th><th scope="col">"Actions"</th></tr></thead>
            <tbody>{items}</tbody>
        </table></div>
        {v.items.is_empty().then(|| view! { <p data-testid="no-items">"No items stored for this payer."</p> })}
        <h2>"Usage this period"</h2>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Usage this period"><table>
            <thead><tr><th scope="col">"Feature"</th><th scope="col">"Used"</th><th scope="col">"Limit"</th><th scope="col">"Period"</th></tr></thead>
            <tbody>{usage}</tbody>
        </table></div>
        <div class="grant">{grant}</div>
        <h2>"Payments"</h2>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Payments"><table>
            <thead><tr><th scope="col">"Time"</th><th scope="col">"Event"</th><th scope="col">"Outcome"</th><th scope="col">"Delivery"</th></tr></thead>
            <tbody>{payments}</tbody>
        </table></div>
        {(v.payments().count() == 0).then(|| view! { <p>"No payment deliveries stored."</p> })}
        <h2>"Deliveries"</h2>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Deliveries"><table>
            <thead><tr><th scope="col">"Received"</th><th scope="col">"Svix id"</th><th scope="col">"Type"</th><th scope="col">"Outcome"</th><th scope="col">"Replay"</th></tr></thead>
            <tbody>{deliveries}</tbody>
        </table></div>
        <h2>"Mail"</h2>
        <div class="table-wrap" tabindex="0" role="region" aria-label="Mail"><table>
            <thead><tr><th scope="col">"Queued"</th><th scope="col">"Subject"</th><th scope="col">"To"</th><th scope="col">"Status"</th></tr></thead>
            <tbody>{mail}</tbody>
        </table></div>
        {v.mail.is_empty().then(|| view! { <p>"No mail to this payer."</p> })}
    }
}

/// "Pro · $20.00 a month · Active · Renews on 1 January 2027": the plan as the subscriber's own
/// pages word it.
fn plan_line(s: &PlanSummary) -> String {
    let parts: Vec<&str> = [
        Some(s.name.as_deref().unwrap_or("No plan")),
        s.price.as_deref(),
        s.status_words.as_deref(),
        s.date_line.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.join(" · ")
}

fn period(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{} – {}", rfc3339(s), rfc3339(e)),
        (Some(s), None) => format!("from {}", rfc3339(s)),
        (None, Some(e)) => format!("until {}", rfc3339(e)),
        (None, None) => "—".into(),
    }
}

fn usage_row(u: &UsageRow) -> impl IntoView {
    view! {
        <tr data-testid="usage"><td>{u.feature.clone()}</td><td>{u.used}</td>
        <td>{u.limit.map_or_else(|| "unlimited".to_string(), |l| l.to_string())}</td>
        <td>{period(Some(u.period.0), Some(u.period.1))}</td></tr>
    }
}

fn delivery_row(d: &EventRow, token: Option<String>, here: &str) -> impl IntoView {
    let replay = (!d.purged).then(|| {
        form(
            format!("/admin/deliveries/{}/replay", d.svix_id),
            token,
            here,
            ().into_any(),
            "Replay".into(),
            "button",
        )
    });
    view! {
        <tr data-testid="delivery">
            <td>{rfc3339(d.received_at)}</td>
            <td><code>{d.svix_id.clone()}</code></td>
            <td>{d.event_type.clone()}</td>
            <td>{d.outcome.clone()}{d.reason.clone().map(|r| format!(": {r}"))}</td>
            <td>{replay.map(IntoAny::into_any).unwrap_or_else(|| "payload removed by retention".into_any())}</td>
        </tr>
    }
}

/// A whole console document: the head every console page shares, the header when an operator
/// is named, and `body` in `main`.
pub fn document(title: &str, operator: Option<&str>, body: impl IntoView + 'static) -> String {
    let header = operator.map(|op| {
        let op = op.to_string();
        view! {
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <a href="/" class="brand">"plangate"</a>
                <nav aria-label="Console">
                    <a href="/admin">"Console"</a>
                    <a href="/admin/dead-letters">"Dead letters"</a>
                    <a href="/admin/audit">"Audit log"</a>
                    <a href="/dashboard">"Back to the app"</a>
                    <span class="who">{op}</span>
                </nav>
            </header>
        }
    });
    let doc = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>{format!("{title} · plangate console")}</title>
                <link rel="stylesheet" href="/pkg/plangate.css"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
            </head>
            <body>
                {header}
                <main id="main">{body}</main>
                <footer>"plangate operator console · no card data is kept or shown here"</footer>
            </body>
        </html>
    };
    format!("<!DOCTYPE html>{}", doc.to_html())
}
