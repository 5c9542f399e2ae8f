//! Demo-only routes: sign-in/out, session refresh, the demo issuer's handshake endpoint (its
//! Frontend API), the pricing and dashboard actions (each one sends signed Clerk-shaped
//! webhooks to our own endpoint), and the local JWKS.

use axum::{
    extract::{Query, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form, Json,
};
use serde::Deserialize;

use super::{
    error::{too_many, ApiError},
    guard::{client_of, Peer},
    WEBHOOK_PATH,
};
use crate::{
    auth::{cookie, handshake::Cookies, now_secs, Caller, Session},
    billing::Payer,
    db::{self, now_ms},
    demo::{
        delivery, events,
        lifecycle::{self, Action, ActionError},
        DemoIssuer, CLIENT_COOKIE, CLIENT_TTL_SECS,
    },
    state::AppState,
};

fn demo(state: &AppState) -> Result<&DemoIssuer, ApiError> {
    state.demo().ok_or_else(ApiError::not_found)
}

fn session_cookie(d: &DemoIssuer, token: &str) -> String {
    format!(
        "__session={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
        d.session_ttl_secs() + 30
    )
}

/// `__client_uat`: when the client last signed in or out (seconds; 0 = signed out), which
/// Clerk's Frontend API keeps on the app's domain; the handshake rules compare tokens with it.
fn client_uat_cookie(at_secs: i64) -> String {
    format!("__client_uat={at_secs}; Path=/; Max-Age={CLIENT_TTL_SECS}; SameSite=Lax")
}

/// What Clerk would put in `pla`/`fea` for this user right now.
async fn plan_claims(state: &AppState, user_id: &str) -> Result<(String, String), ApiError> {
    let gate = state.entitlements();
    let slug = gate
        .current_plan(&Payer::user(user_id))
        .await?
        .map_or_else(|| "free_user".into(), |i| i.plan_slug);
    let fea = gate
        .catalog()
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

/// A session token for `user_id` as the demo issuer would refresh it; `signed_in_at`: when the
/// client signed in (stamped into `fva`).
async fn fresh_session(
    state: &AppState,
    user_id: &str,
    signed_in_at: Option<i64>,
) -> Result<String, ApiError> {
    let d = demo(state)?;
    let (pla, fea) = plan_claims(state, user_id).await?;
    d.mint_session(user_id, &pla, &fea, now_secs(), signed_in_at)
        .map_err(|e| ApiError::internal("minting a demo session", e))
}

#[derive(Deserialize)]
pub struct SignInForm {
    pub name: String,
    /// Where to go once signed in: a console page (signing in again to act there), else the
    /// dashboard.
    #[serde(default)]
    pub next: Option<String>,
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
    let url = format!("{}{WEBHOOK_PATH}", state.self_url());
    delivery::post_all(state.http(), &url, d.secret(), bodies)
        .await
        .map_err(|e| ApiError::internal("sending a demo webhook", e))
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
    state.limiter().charge(ip).map_err(too_many)?;
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
    let user_id = format!("{}{name}", crate::demo::USER_PREFIX);
    let email = crate::demo::email_of(&user_id).expect("a demo user id");
    let spec = lifecycle::spec_for(&user_id, &email, now_ms());
    post_events(
        state,
        vec![events::build("user.created", &spec).expect("user event")],
    )
    .await?;
    let client = d
        .mint_client(&user_id, &email, now_secs())
        .map_err(|e| ApiError::internal("minting a demo client", e))?;
    let now = now_secs();
    let session = fresh_session(state, &user_id, Some(now)).await?;
    let next = form
        .next
        .as_deref()
        .filter(|n| crate::billing::operator::back_to(Some(n)) == *n)
        .unwrap_or("/dashboard");
    let mut resp = Redirect::to(next).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, hv(&session_cookie(d, &session)));
    h.append(header::SET_COOKIE, hv(&client_uat_cookie(now)));
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
    h.append(header::SET_COOKIE, hv(&client_uat_cookie(0)));
    resp
}

/// Refreshes `__session` from the client cookie, as clerk-js does before the token expires.
pub async fn refresh(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let d = demo(&state)?;
    let (parts, _) = req.into_parts();
    let client = cookie(&parts, CLIENT_COOKIE)
        .and_then(|c| d.verify_client(c))
        .ok_or_else(ApiError::unauthorized)?;
    let token = fresh_session(&state, &client.user_id, Some(client.signed_in_at)).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, hv(&session_cookie(d, &token)));
    Ok(resp)
}

#[derive(Deserialize)]
pub struct HandshakeQuery {
    redirect_url: String,
}

/// The demo issuer's Frontend API handshake (`GET /demo/v1/client/handshake`), the protocol
/// Clerk's `/v1/client/handshake` speaks: from the client cookie (Clerk keeps it on its own
/// domain), the cookies the app should have now, signed into `__clerk_handshake` on a `307`
/// back to `redirect_url`, which must be on `APP_URL` (never an open redirect).
pub async fn handshake(
    State(state): State<AppState>,
    Query(q): Query<HandshakeQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let d = demo(&state)?;
    let app_url = &state.config().app_url;
    let on_app = q
        .redirect_url
        .strip_prefix(app_url.as_str())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'));
    if !on_app {
        return Err(ApiError::bad_request(
            "redirect_url",
            "redirect_url must be on this app's own origin",
        ));
    }
    let (parts, _) = req.into_parts();
    let now = now_secs();
    let client = cookie(&parts, CLIENT_COOKIE).and_then(|c| d.verify_client(c));
    let cookies = match client {
        Some(client) => {
            let token = fresh_session(&state, &client.user_id, Some(client.signed_in_at)).await?;
            // The client's last sign-in as its cookie says, unless absent or from the future.
            let uat = Cookies::read(&parts.headers, None).client_uat;
            let uat = if (1..=now).contains(&uat) { uat } else { now };
            vec![session_cookie(d, &token), client_uat_cookie(uat)]
        }
        None => vec![
            "__session=; Path=/; Max-Age=0".to_string(),
            client_uat_cookie(0),
        ],
    };
    let token = d
        .mint_handshake(&cookies, now)
        .map_err(|e| ApiError::internal("minting a demo handshake", e))?;
    let parsed = reqwest::Url::parse(&q.redirect_url)
        .map_err(|_| ApiError::bad_request("redirect_url", "redirect_url is not a URL"))?;
    // Rebuilt on APP_URL from the path and query alone: nothing in it can name another host.
    let path_and_query = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut back = reqwest::Url::parse(&crate::auth::handshake::location_on(
        app_url,
        &path_and_query,
    ))
    .map_err(|_| ApiError::bad_request("redirect_url", "redirect_url is not a URL"))?;
    back.query_pairs_mut()
        .append_pair(crate::auth::handshake::HANDSHAKE, &token);
    Ok(super::handshake::redirect(back.as_str()))
}

pub async fn jwks(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(demo(&state)?.jwks.clone()))
}

#[derive(Deserialize)]
pub struct ActionForm {
    pub action: String,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub period: Option<String>,
    /// `yes` on the confirmation step of a cancel; without it, cancel asks first.
    #[serde(default)]
    pub confirm: Option<String>,
    /// The page to come back to (`/dashboard` unless another account page).
    #[serde(default)]
    pub back: Option<String>,
}

/// The signed-in demo user (the guard's verdict) and their mail address.
async fn signed_in(state: &AppState, parts: &Parts) -> Result<(Session, String), ApiError> {
    let session = Caller::of(&parts.extensions)
        .session()
        .cloned()
        .ok_or_else(ApiError::unauthorized)?;
    let mut conn = state.db().conn().await?;
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
    parts: Parts,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    demo(&state)?;
    let (session, email) = signed_in(&state, &parts).await?;
    // Canceling is asked twice: the first press shows what it means and a confirm button.
    if form.action == "cancel" && form.confirm.as_deref() != Some("yes") {
        return Ok(Redirect::to("/dashboard?confirm=cancel").into_response());
    }
    let now = now_ms();
    let current = state
        .entitlements()
        .current_plan(&session.account().caller)
        .await?;
    let catalog = state.entitlements().catalog();
    let bad = |e: ActionError| ApiError::bad_request(e.code(), e.to_string());
    let action = Action::parse(
        &form.action,
        form.plan.as_deref(),
        form.period.as_deref(),
        catalog,
    )
    .map_err(bad)?;
    let base = lifecycle::spec_for(&session.user_id, &email, now);
    let bodies =
        lifecycle::events_for(&action, base, current.as_ref(), catalog, now).map_err(bad)?;
    post_events(&state, bodies).await?;
    // The plan changed: mint a token that says so, as Clerk would on its next refresh.
    let signed_in_at = cookie(&parts, CLIENT_COOKIE)
        .and_then(|c| demo(&state).ok()?.verify_client(c))
        .filter(|c| c.user_id == session.user_id)
        .map(|c| c.signed_in_at);
    let token = fresh_session(&state, &session.user_id, signed_in_at).await?;
    let back = form
        .back
        .as_deref()
        .filter(|b| matches!(*b, "/dashboard/billing" | "/dashboard/payment-gated"))
        .unwrap_or("/dashboard");
    let notice = match &action {
        Action::Subscribe { .. } => "subscribed",
        Action::StartTrial { .. } => "trial_started",
        Action::TrialEnding => "trial_ending",
        Action::ExtendTrial { .. } => "trial_extended",
        Action::Cancel | Action::End => "canceled",
        Action::FailPayment => "payment_failed",
        Action::Recover => "recovered",
    };
    let mut resp = Redirect::to(&format!("{back}?notice={notice}")).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        hv(&session_cookie(demo(&state)?, &token)),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct ReplayForm {
    pub svix_id: String,
}

/// The events page's Replay button: applies a stored delivery again through the inbox, as
/// `plangate inbox replay` does, and goes back to the page.
pub async fn replay(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<ReplayForm>,
) -> Result<Response, ApiError> {
    demo(&state)?;
    let (session, _) = signed_in(&state, &parts).await?;
    // A demo user replays only their own deliveries (the ones the events page shows them).
    let own = state
        .inbox()
        .recent(&session.user_id, 200)
        .await
        .map_err(|e| ApiError::unavailable("reading deliveries", e))?;
    if !own.iter().any(|r| r.svix_id == form.svix_id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such delivery",
        ));
    }
    match state.inbox().replay(&form.svix_id).await {
        Ok(r) => {
            tracing::info!(svix_id = %r.svix_id, outcome = r.outcome.as_str(), "replayed from the demo events page")
        }
        Err(crate::services::InboxError::NotFound(_)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such delivery",
            ))
        }
        Err(crate::services::InboxError::Purged(_)) => {
            return Err(ApiError::bad_request(
                "purged",
                "retention removed this payload",
            ))
        }
        Err(e) => return Err(ApiError::unavailable("replaying a delivery", e)),
    }
    Ok(Redirect::to("/demo/events").into_response())
}
