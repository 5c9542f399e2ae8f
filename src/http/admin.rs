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
        operator::{self, Action, FormError, Outcome},
        Payer,
    },
    clerk_api::is_clerk_id,
    pages::console as views,
    services::console::ValidateError,
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
    answer(
        async move {
            let q = query(&parts).remove("q").unwrap_or_default();
            let console = state.console();
            let overview = console.overview().await?;
            let found = console.find(&q).await?;
            let notice = notice(&state, &op, &parts).await?;
            let body = views::home(&q, found, &overview, notice);
            Ok(layout("Operator console", &op, body))
        }
        .await,
    )
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
            let body = views::payer(
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

async fn dead_letters(state: AppState, op: Session, parts: Parts) -> Response {
    answer(
        async move {
            let console = state.console();
            let rows = console.dead_letters(200).await?;
            let mut tokens = console
                .form_tokens(&op.user_id, rows.len())
                .await?
                .into_iter();
            let notice = notice(&state, &op, &parts).await?;
            let body = views::dead_letters(&rows, &mut tokens, notice);
            Ok(layout("Dead letters", &op, body))
        }
        .await,
    )
}

async fn audit(state: AppState, op: Session) -> Response {
    answer(
        async move {
            let rows = state.console().audit_log(200).await?;
            Ok(layout("Audit log", &op, views::audit(rows)))
        }
        .await,
    )
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
    Ok(last.map(views::notice))
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
    html_page(
        StatusCode::OK,
        views::document(title, Some(&op.user_id), body),
    )
}

fn html_page(status: StatusCode, document: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        document,
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
    html_page(
        status,
        views::document(
            "Nothing was done",
            None,
            views::nothing_done(code, message, back),
        ),
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
    html_page(
        StatusCode::FORBIDDEN,
        views::document(
            "Sign in again",
            None,
            views::sign_in_again(message, state.demo().is_some(), back),
        ),
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
