//! The operator console's edge (README, "Operator console"): `/admin…` pages and actions for
//! the operators `ADMIN_USER_IDS` names, as an axum router (`router`) behind an operators-only
//! route layer. Anyone else, any path the console does not serve and any method a route does
//! not take get exactly what an unknown path gets: the same not-found handler. Pages are
//! rendered on the server without scripts (the app's CSP, no hydration); every form carries a
//! one-time token; acting needs Clerk's `strict` reverification (under ten minutes).

use axum::{
    extract::{FromRequest, Path, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, post},
    Extension, Form, Router,
};
use leptos::prelude::*;
use std::collections::HashMap;

use super::{
    error::{too_many, ApiError},
    guard::client_of,
};
use crate::{
    auth::{Caller, Session},
    billing::{
        operator::{self, rfc3339, Action, AuditEntry, FormError, Outcome},
        Payer, PlanSummary, Status,
    },
    clerk_api::is_clerk_id,
    db::{console::FoundPayer, inbox::EventRow},
    services::console::{PayerView, UsageRow, ValidateError},
    state::AppState,
};

/// What any unknown path gets, for this request.
async fn unknown(state: AppState, req: Request) -> Response {
    let uri = req.uri().clone();
    super::not_found_handler(&state)(uri, State(state), req).await
}

/// A page's answer, its errors as the API's.
fn answer(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn home(state: AppState, op: Session, parts: Parts) -> Response {
    answer(async move {
        let q = query(&parts).remove("q").unwrap_or_default();
        let console = state.console();
        let overview = console.overview().await?;
        let found = console.find(&q).await?;
        let notice = notice(&state, &op, &parts).await?;
        let body = view! {
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
        };
        Ok(layout("Operator console", &op, body))
    }
    .await)
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

async fn payer_page_for(state: AppState, op: Session, parts: Parts, payer: Payer) -> Response {
    answer(
        async move {
            let console = state.console();
            let view = console.payer(&payer).await?;
            let here = format!("/admin/payers/{}/{}", payer.kind.as_str(), payer.id);
            // Two payer forms, three per live item, one per delivery.
            let n = 2 + 3 * view.items.len() + view.deliveries.len();
            let mut tokens = console.form_tokens(&op.user_id, n).await?.into_iter();
            let notice = notice(&state, &op, &parts).await?;
            let metered: Vec<String> = console
                .catalog()
                .metered_features()
                .into_iter()
                .map(str::to_string)
                .collect();
            let body = payer_page(
                &view,
                &here,
                &mut tokens,
                metered,
                console.can_reach_clerk(),
            );
            Ok(layout(
                &format!("{} {}", payer.kind.as_str(), payer.id),
                &op,
                view! { {notice} {body} },
            ))
        }
        .await,
    )
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

fn payer_page(
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

async fn dead_letters(state: AppState, op: Session, parts: Parts) -> Response {
    answer(async move {
        let console = state.console();
        let rows = console.dead_letters(200).await?;
        let mut tokens = console
            .form_tokens(&op.user_id, rows.len())
            .await?
            .into_iter();
        let notice = notice(&state, &op, &parts).await?;
        let empty = rows.is_empty();
        let rows = rows
            .iter()
            .map(|d| delivery_row(d, tokens.next(), "/admin/dead-letters"))
            .collect_view();
        let body = view! {
            <h1>"Dead letters"</h1>
            {notice}
            <p>"Deliveries that could not be applied, with the reason. Replaying one applies it again through the inbox (the ordering rule still decides)."</p>
            <div class="table-wrap" tabindex="0" role="region" aria-label="Dead letters"><table>
                <thead><tr><th scope="col">"Received"</th><th scope="col">"Svix id"</th><th scope="col">"Type"</th><th scope="col">"Outcome"</th><th scope="col">"Replay"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
            {empty.then(|| view! { <p data-testid="no-dead-letters">"No dead letters."</p> })}
        };
        Ok(layout("Dead letters", &op, body))
    }
    .await)
}

async fn audit(state: AppState, op: Session) -> Response {
    answer(async move {
        let rows = state.console().audit_log(200).await?;
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
        let body = view! {
            <h1>"Audit log"</h1>
            <p>"Every console action, newest first, whatever its result. Also: "<code>"plangate audit --limit 50"</code>"."</p>
            <div class="table-wrap" tabindex="0" role="region" aria-label="Audit log"><table>
                <thead><tr><th scope="col">"Time"</th><th scope="col">"Operator"</th><th scope="col">"Action"</th><th scope="col">"Target"</th><th scope="col">"Parameters"</th><th scope="col">"Result"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
            {empty.then(|| view! { <p>"No actions yet."</p> })}
        };
        Ok(layout("Audit log", &op, body))
    }
    .await)
}

/// After an action (`?done=1`): this operator's latest audit row, in words.
async fn notice(
    state: &AppState,
    op: &Session,
    parts: &Parts,
) -> Result<Option<AnyView>, ApiError> {
    if !query(parts).contains_key("done") {
        return Ok(None);
    }
    let last = state
        .console()
        .audit_log(20)
        .await?
        .into_iter()
        .find(|e| e.operator == op.user_id);
    Ok(last.map(|e: AuditEntry| {
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
    }))
}

fn query(parts: &Parts) -> HashMap<String, String> {
    parts
        .uri
        .query()
        .and_then(|q| {
            axum::extract::Query::<HashMap<String, String>>::try_from_uri(
                &format!("/?{q}").parse().ok()?,
            )
            .ok()
        })
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The console's page: the app's stylesheet and header, no scripts.
fn layout(title: &str, op: &Session, body: impl IntoView + 'static) -> Response {
    document(StatusCode::OK, title, Some(op), body)
}

/// A whole console document: the head every console page shares, the header when an operator
/// is named, and `body` in `main`.
fn document(
    status: StatusCode,
    title: &str,
    op: Option<&Session>,
    body: impl IntoView + 'static,
) -> Response {
    let header = op.map(|op| {
        view! {
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <a href="/" class="brand">"plangate"</a>
                <nav aria-label="Console">
                    <a href="/admin">"Console"</a>
                    <a href="/admin/dead-letters">"Dead letters"</a>
                    <a href="/admin/audit">"Audit log"</a>
                    <a href="/dashboard">"Back to the app"</a>
                    <span class="who">{op.user_id.clone()}</span>
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
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!DOCTYPE html>{}", doc.to_html()),
    )
        .into_response()
}

/// An action's form, as posted.
type Fields = HashMap<String, String>;

/// An operator's action: its form read, the action built from it, done (or refused) by the
/// console, and answered `303` back to the page, or with the refusal.
async fn act<F>(
    state: AppState,
    op: Session,
    req: Request,
    (name, target): (&'static str, String),
    build: F,
) -> Response
where
    F: FnOnce(&Fields) -> Result<Action, FormError>,
{
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| axum::Extension(*c));
    let ip = client_of(&state, &peer, req.headers());
    if let Some(retry) = state.limiter().blocked(ip) {
        return too_many(retry);
    }
    let html = wants_html(req.headers());
    let console = state.console().clone();
    let Form(fields) = match Form::<Fields>::from_request(req, &state).await {
        Ok(f) => f,
        Err(_) => {
            console
                .refused(&op.user_id, name, &target, "invalid_form")
                .await;
            return refusal(
                html,
                StatusCode::BAD_REQUEST,
                "invalid_form",
                "the form could not be read (application/x-www-form-urlencoded expected)",
                "/admin",
            );
        }
    };
    let back = operator::back_to(fields.get("back").map(String::as_str)).to_string();
    let checked = match build(&fields) {
        Ok(action) => match console.validate(&action).await {
            Ok(()) => Ok(action),
            Err(ValidateError::Form(e)) => Err(e),
            Err(ValidateError::Db(e)) => return ApiError::from(e).into_response(),
        },
        Err(e) => Err(e),
    };
    let action = match checked {
        Ok(a) => a,
        Err(e) => {
            console.refused(&op.user_id, name, &target, e.code()).await;
            return refusal(
                html,
                StatusCode::BAD_REQUEST,
                e.code(),
                &e.to_string(),
                &back,
            );
        }
    };
    let token = fields
        .get("form_token")
        .map(String::as_str)
        .unwrap_or_default();
    let outcome = console.act(&op.user_id, op.fva, token, action).await;
    match outcome {
        Outcome::Refused("reverification_required") => {
            state.limiter().count(ip);
            reverify(html, &state, &back)
        }
        Outcome::Refused("form_token") => {
            state.limiter().count(ip);
            refusal(
                html,
                StatusCode::CONFLICT,
                "form_token",
                "this form was already used, or was not issued to you: nothing was done. Reload the page to act again.",
                &back,
            )
        }
        _ => {
            let to = crate::auth::handshake::location_on(
                &state.config().app_url,
                &format!("{back}?done=1"),
            );
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A refused action: an HTML page for a browser, the API's JSON error otherwise.
fn refusal(
    html: bool,
    status: StatusCode,
    code: &'static str,
    message: &str,
    back: &str,
) -> Response {
    if !html {
        return ApiError::new(status, code, message.to_string()).into_response();
    }
    let back = back.to_string();
    document(
        status,
        "Nothing was done",
        None,
        view! {
            <h1>"Nothing was done"</h1>
            <p class="error" data-code=code>{format!("{message} ({code})")}</p>
            <p><a href=back>"Back to the console"</a></p>
        },
    )
}

/// `403 reverification_required`: the sign-in is older than ten minutes (or its age unknown).
fn reverify(html: bool, state: &AppState, back: &str) -> Response {
    let message = "acting in the console needs a sign-in from the last 10 minutes: sign in again, then repeat the action";
    if !html {
        let mut e = ApiError::new(StatusCode::FORBIDDEN, "reverification_required", message);
        e.message = format!("{message} (sign in at {}/sign-in)", state.config().app_url);
        return e.into_response();
    }
    let demo = state.demo().is_some();
    let back = back.to_string();
    document(
        StatusCode::FORBIDDEN,
        "Sign in again",
        None,
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
        },
    )
}

fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.get(name).map(String::as_str)
}

/// The console's routes, nested under `/admin` behind [`operators_only`]: anyone but an
/// operator, any path the console does not serve and any method a route does not take gets
/// exactly what an unknown path gets (each route's fallback and the catch-all are
/// [`unknown_route`]).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(home_page).fallback(unknown_route))
        .route(
            "/admin/dead-letters",
            get(dead_letters_page).fallback(unknown_route),
        )
        .route("/admin/audit", get(audit_page).fallback(unknown_route))
        .route(
            "/admin/payers/{kind}/{id}",
            get(payer_page_route).fallback(unknown_route),
        )
        .route(
            "/admin/payers/{kind}/{id}/reconcile",
            post(reconcile_action).fallback(unknown_route),
        )
        .route(
            "/admin/payers/{kind}/{id}/grant",
            post(grant_action).fallback(unknown_route),
        )
        .route(
            "/admin/deliveries/{svix_id}/replay",
            post(replay_action).fallback(unknown_route),
        )
        .route(
            "/admin/items/{item_id}/cancel",
            post(cancel_action).fallback(unknown_route),
        )
        .route(
            "/admin/items/{item_id}/extend-trial",
            post(extend_action).fallback(unknown_route),
        )
        .route("/admin/{*rest}", any(unknown_route))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            operators_only,
        ))
}

/// The operator a request of the console is from: put there by [`operators_only`], so every
/// route behind it can extract it.
#[derive(Clone)]
struct Operator(Session);

/// Lets operators through to the console's routes, with their session as [`Operator`]; anyone
/// else gets what an unknown path gets.
async fn operators_only(
    State(state): State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let op = Caller::of(req.extensions())
        .session()
        .filter(|s| state.console().is_operator(&s.user_id))
        .cloned();
    match op {
        Some(op) => {
            req.extensions_mut().insert(Operator(op));
            next.run(req).await
        }
        None => unknown(state, req).await,
    }
}

async fn unknown_route(State(state): State<AppState>, req: Request) -> Response {
    unknown(state, req).await
}

async fn home_page(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    req: Request,
) -> Response {
    home(state, op, req.into_parts().0).await
}

async fn dead_letters_page(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    req: Request,
) -> Response {
    dead_letters(state, op, req.into_parts().0).await
}

async fn audit_page(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
) -> Response {
    audit(state, op).await
}

/// A payer route's `{user|org}/{id}`, when both are well formed.
fn payer_of(kind: &str, id: &str) -> Option<Payer> {
    Payer::from_parts(kind, id).ok()
}

async fn payer_page_route(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    Path((kind, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(payer) = payer_of(&kind, &id) else {
        return unknown(state, req).await;
    };
    payer_page_for(state, op, req.into_parts().0, payer).await
}

async fn reconcile_action(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    Path((kind, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(payer) = payer_of(&kind, &id) else {
        return unknown(state, req).await;
    };
    let target = payer.label();
    act(state, op, req, ("reconcile", target), |_| {
        Ok(Action::Reconcile { payer })
    })
    .await
}

async fn grant_action(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    Path((kind, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(payer) = payer_of(&kind, &id) else {
        return unknown(state, req).await;
    };
    let metered: Vec<String> = state
        .console()
        .catalog()
        .metered_features()
        .into_iter()
        .map(str::to_string)
        .collect();
    let target = payer.label();
    act(state, op, req, ("grant", target), move |f| {
        let feature = field(f, "feature")
            .filter(|x| metered.iter().any(|m| m == x))
            .ok_or(FormError::Feature)?
            .to_string();
        let units = operator::units(field(f, "units"))?;
        Ok(Action::Grant {
            payer,
            feature,
            units,
        })
    })
    .await
}

async fn replay_action(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    Path(svix_id): Path<String>,
    req: Request,
) -> Response {
    if !is_svix_id(&svix_id) {
        return unknown(state, req).await;
    }
    let target = format!("delivery:{svix_id}");
    act(state, op, req, ("replay", target), |_| {
        Ok(Action::Replay { svix_id })
    })
    .await
}

async fn cancel_action(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    Path(item_id): Path<String>,
    req: Request,
) -> Response {
    if !is_clerk_id(&item_id) {
        return unknown(state, req).await;
    }
    let target = format!("item:{item_id}");
    act(state, op, req, ("cancel", target), |f| {
        Ok(Action::Cancel {
            end_now: operator::end_now(field(f, "end_now"))?,
            item_id,
        })
    })
    .await
}

async fn extend_action(
    State(state): State<AppState>,
    Extension(Operator(op)): Extension<Operator>,
    Path(item_id): Path<String>,
    req: Request,
) -> Response {
    if !is_clerk_id(&item_id) {
        return unknown(state, req).await;
    }
    let target = format!("item:{item_id}");
    act(state, op, req, ("extend_trial", target), |f| {
        Ok(Action::ExtendTrial {
            extend_to: operator::extend_to(field(f, "extend_to"), crate::db::now_ms())?,
            item_id,
        })
    })
    .await
}

/// Svix ids (`msg_…`) and the reconciler's own (`reconcile_…`): letters, digits, `_`, `-`.
fn is_svix_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
