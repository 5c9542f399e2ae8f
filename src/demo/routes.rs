//! Demo-only routes: sign-in/out, session refresh, the pricing and dashboard actions (each one
//! sends signed Clerk-shaped webhooks to our own endpoint), and the local JWKS.

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    Form, Json,
};
use serde::Deserialize;

use super::{events, send_webhook, DemoIssuer, CLIENT_COOKIE, CLIENT_TTL_SECS, SESSION_TTL_SECS};
use crate::{
    auth::{
        extract::{cookie, now_secs},
        Session,
    },
    billing::{
        subscription::{current_item, PayerKind},
        Status,
    },
    db::{self, now_ms},
    error::ApiError,
    security::{client_of, too_many, Peer},
    state::AppState,
};

fn demo(state: &AppState) -> Result<&DemoIssuer, ApiError> {
    state.demo.as_deref().ok_or_else(ApiError::not_found)
}

fn session_cookie(token: &str) -> String {
    format!(
        "__session={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
        SESSION_TTL_SECS + 30
    )
}

/// What Clerk would put in `pla`/`fea` for this user right now.
async fn plan_claims(state: &AppState, user_id: &str) -> Result<(String, String), ApiError> {
    let mut conn = state.db.conn().await?;
    let items = db::items::for_payer(&mut conn, PayerKind::User, user_id).await?;
    let now = now_ms();
    let slug = current_item(&items, now)
        .filter(|i| {
            matches!(
                i.status,
                Status::Active | Status::PastDue | Status::Canceled
            )
        })
        .map(|i| i.plan_slug.clone())
        .unwrap_or_else(|| "free_user".into());
    let fea = state
        .catalog
        .plan(&slug)
        .map(|p| {
            p.features
                .iter()
                .map(|f| format!("u:{f}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    Ok((format!("u:{slug}"), fea))
}

async fn fresh_session(state: &AppState, user_id: &str) -> Result<String, ApiError> {
    let d = demo(state)?;
    let (pla, fea) = plan_claims(state, user_id).await?;
    d.mint_session(user_id, &pla, &fea, now_secs())
        .map_err(|e| ApiError::internal("minting a demo session", e))
}

#[derive(Deserialize)]
pub struct SignInForm {
    pub name: String,
}

fn sanitize(name: &str) -> Option<String> {
    let s: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(32)
        .collect();
    (!s.is_empty()).then_some(s)
}

async fn post_events(state: &AppState, bodies: Vec<serde_json::Value>) -> Result<(), ApiError> {
    let d = demo(state)?;
    let url = format!("{}/api/webhooks/clerk", state.self_url);
    for body in bodies {
        let (status, text) = send_webhook(&state.http, &url, d.secret(), &body.to_string())
            .await
            .map_err(|e| ApiError::internal("sending a demo webhook", e))?;
        if !(200..300).contains(&status) {
            return Err(ApiError::internal(
                "demo webhook refused",
                format!("{status} {text}"),
            ));
        }
    }
    Ok(())
}

pub async fn sign_in(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, Response> {
    let d = demo(&state).map_err(IntoResponse::into_response)?;
    // Every sign-in counts against the address: each one creates a user and sends a webhook.
    let ip = client_of(&state, &peer, &headers);
    state.limiter.charge(ip).map_err(too_many)?;
    sign_in_as(&state, d, &form)
        .await
        .map_err(IntoResponse::into_response)
}

async fn sign_in_as(
    state: &AppState,
    d: &DemoIssuer,
    form: &SignInForm,
) -> Result<Response, ApiError> {
    let Some(name) = sanitize(&form.name) else {
        return Err(ApiError::bad_request(
            "invalid_name",
            "pick a name made of letters and digits",
        ));
    };
    let user_id = format!("user_demo_{name}");
    let email = format!("{name}@demo.plangate.test");
    let now = now_ms();
    let spec = spec_for(&user_id, &email, now);
    post_events(
        state,
        vec![events::build("user.created", &spec).expect("user event")],
    )
    .await?;
    let client = d
        .mint_client(&user_id, &email, now_secs())
        .map_err(|e| ApiError::internal("minting a demo client", e))?;
    let session = fresh_session(state, &user_id).await?;
    let mut resp = Redirect::to("/dashboard").into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, hv(&session_cookie(&session)));
    h.append(
        header::SET_COOKIE,
        hv(&format!(
            "{CLIENT_COOKIE}={client}; Path=/; Max-Age={CLIENT_TTL_SECS}; HttpOnly; SameSite=Lax"
        )),
    );
    Ok(resp)
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn sign_out() -> Response {
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        HeaderValue::from_static("__session=; Path=/; Max-Age=0"),
    );
    h.append(
        header::SET_COOKIE,
        hv(&format!("{CLIENT_COOKIE}=; Path=/; Max-Age=0")),
    );
    resp
}

/// Refreshes `__session` from the client cookie, as clerk-js does before the token expires.
pub async fn refresh(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let d = demo(&state)?;
    let (parts, _) = req.into_parts();
    let (user_id, _) = cookie(&parts, CLIENT_COOKIE)
        .and_then(|c| d.verify_client(c))
        .ok_or_else(ApiError::unauthorized)?;
    let token = fresh_session(&state, &user_id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, hv(&session_cookie(&token)));
    Ok(resp)
}

/// Like Clerk's handshake: a page request whose session token is missing or expired but whose
/// client cookie is valid gets a fresh token, for this request and in the response.
pub async fn refresh_middleware(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(d) = state.demo.clone() else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let needs = parts.method == axum::http::Method::GET
        && !parts.uri.path().starts_with("/pkg")
        && state
            .session_from_parts(&parts)
            .await
            .ok()
            .flatten()
            .is_none()
        && parts.headers.get(header::AUTHORIZATION).is_none();
    let client = if needs {
        cookie(&parts, CLIENT_COOKIE).and_then(|c| d.verify_client(c))
    } else {
        None
    };
    let mut set_cookie = None;
    if let Some((user_id, _)) = client {
        if let Ok(token) = fresh_session(&state, &user_id).await {
            // Replace the request's cookies so the handlers see the fresh token.
            let others: Vec<String> = parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .filter(|p| !p.starts_with("__session="))
                .map(str::to_string)
                .collect();
            let mut all = others;
            all.push(format!("__session={token}"));
            parts.headers.remove(header::COOKIE);
            parts.headers.insert(header::COOKIE, hv(&all.join("; ")));
            // The guard's verdict was on the old token.
            parts
                .extensions
                .remove::<crate::auth::extract::VerifiedToken>();
            set_cookie = Some(session_cookie(&token));
        }
    }
    req = Request::from_parts(parts, body);
    let mut resp = next.run(req).await;
    if let Some(c) = set_cookie {
        resp.headers_mut().append(header::SET_COOKIE, hv(&c));
    }
    resp
}

pub async fn jwks(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(demo(&state)?.jwks.clone()))
}

fn spec_for(user_id: &str, email: &str, now: i64) -> events::Spec {
    events::Spec {
        user_id: user_id.into(),
        email: email.into(),
        org_id: None,
        plan_slug: "free_user".into(),
        plan_name: "Free".into(),
        amount_cents: 0,
        annual: false,
        item_id: events::new_id("csub_item"),
        subscription_id: events::new_id("csub"),
        status: "active".into(),
        period_start: now,
        period_end: None,
        canceled_at: None,
        past_due_at: None,
        at: now,
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    pub action: String,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub period: Option<String>,
}

async fn signed_in(state: &AppState, headers: HeaderMap) -> Result<(Session, String), ApiError> {
    let (mut parts, _) = Request::new(()).into_parts();
    parts.headers = headers;
    let session = state
        .session_from_parts(&parts)
        .await
        .ok()
        .flatten()
        .ok_or_else(ApiError::unauthorized)?;
    let mut conn = state.db.conn().await?;
    let email = db::users::get(&mut conn, &session.user_id)
        .await?
        .and_then(|u| u.email)
        .unwrap_or_else(|| format!("{}@demo.plangate.test", session.user_id));
    Ok((session, email))
}

/// One endpoint for every demo billing button: builds the Clerk events of that step and sends
/// them, signed, to our own webhook endpoint.
pub async fn action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    demo(&state)?;
    let (session, email) = signed_in(&state, headers).await?;
    let now = now_ms();
    let mut conn = state.db.conn().await?;
    let items = db::items::for_payer(&mut conn, PayerKind::User, &session.user_id).await?;
    drop(conn);
    let current = current_item(&items, now)
        .filter(|i| {
            matches!(
                i.status,
                Status::Active | Status::PastDue | Status::Canceled
            )
        })
        .cloned();

    let mut spec = spec_for(&session.user_id, &email, now);
    let mut bodies = Vec::new();
    let from_current = |spec: &mut events::Spec, cur: &crate::billing::ItemState| {
        spec.item_id = cur.id.clone();
        spec.subscription_id = cur
            .subscription_id
            .clone()
            .unwrap_or_else(|| events::new_id("csub"));
        spec.plan_slug = cur.plan_slug.clone();
        spec.plan_name = cur
            .plan_name
            .clone()
            .unwrap_or_else(|| cur.plan_slug.clone());
        spec.period_start = cur.period_start.unwrap_or(now);
        spec.period_end = cur.period_end;
        spec.annual = cur
            .period_end
            .zip(cur.period_start)
            .is_some_and(|(e, s)| e - s > 40 * events::DAY_MS);
        spec.amount_cents = state
            .catalog
            .plan(&cur.plan_slug)
            .map(|p| {
                if spec.annual {
                    p.annual_cents
                } else {
                    p.monthly_cents
                }
            })
            .unwrap_or(0);
    };
    // Each event one millisecond after the previous, so their order is unambiguous.
    let mut tick = 0;
    let mut push = |t: &str, spec: &mut events::Spec, bodies: &mut Vec<serde_json::Value>| {
        spec.at = now + tick;
        tick += 1;
        if let Some(b) = events::build(t, spec) {
            bodies.push(b);
        }
    };
    match form.action.as_str() {
        "subscribe" => {
            let slug = form.plan.clone().unwrap_or_default();
            let plan = state
                .catalog
                .plan(&slug)
                .filter(|p| !p.is_free())
                .ok_or_else(|| ApiError::bad_request("unknown_plan", "no such paid plan"))?
                .clone();
            let annual = form.period.as_deref() == Some("annual") && plan.annual_cents > 0;
            if let Some(cur) = &current {
                if cur.plan_slug != slug {
                    // Switching: the old item ends as the new one starts.
                    from_current(&mut spec, cur);
                    spec.status = "ended".into();
                    push("subscriptionItem.ended", &mut spec, &mut bodies);
                }
            }
            spec = spec_for(&session.user_id, &email, now);
            spec.plan_slug = plan.slug.clone();
            spec.plan_name = plan.name.clone();
            spec.annual = annual;
            spec.amount_cents = if annual {
                plan.annual_cents
            } else {
                plan.monthly_cents
            };
            spec.period_end = Some(now + if annual { 365 } else { 30 } * events::DAY_MS);
            if let Some(cur) = current.as_ref().filter(|c| c.plan_slug == slug) {
                spec.item_id = cur.id.clone();
            }
            push("paymentAttempt.created", &mut spec, &mut bodies);
            push("paymentAttempt.updated", &mut spec, &mut bodies);
            push("subscription.created", &mut spec, &mut bodies);
            push("subscriptionItem.active", &mut spec, &mut bodies);
        }
        "cancel" | "fail_payment" | "recover" => {
            let cur = current
                .as_ref()
                .filter(|c| {
                    state
                        .catalog
                        .plan(&c.plan_slug)
                        .is_some_and(|p| !p.is_free())
                })
                .ok_or_else(|| {
                    ApiError::bad_request("no_subscription", "no paid subscription to change")
                })?;
            from_current(&mut spec, cur);
            match form.action.as_str() {
                "cancel" => {
                    spec.status = "canceled".into();
                    spec.canceled_at = Some(now);
                    push("subscriptionItem.canceled", &mut spec, &mut bodies);
                    push("subscription.updated", &mut spec, &mut bodies);
                }
                "fail_payment" => {
                    spec.status = "failed".into();
                    spec.past_due_at = Some(now);
                    push("paymentAttempt.updated", &mut spec, &mut bodies);
                    spec.status = "past_due".into();
                    push("subscriptionItem.pastDue", &mut spec, &mut bodies);
                    push("subscription.pastDue", &mut spec, &mut bodies);
                }
                _ => {
                    spec.status = "active".into();
                    push("paymentAttempt.updated", &mut spec, &mut bodies);
                    push("subscriptionItem.active", &mut spec, &mut bodies);
                    push("subscription.active", &mut spec, &mut bodies);
                }
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "unknown_action",
                "unknown demo action",
            ))
        }
    }
    post_events(&state, bodies).await?;
    // The plan changed: mint a token that says so, as Clerk would on its next refresh.
    let token = fresh_session(&state, &session.user_id).await?;
    let mut resp = Redirect::to("/dashboard").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, hv(&session_cookie(&token)));
    Ok(resp)
}
