//! Pages over HTTP: every route renders, 404s are 404, premium markup only for the entitled,
//! demo routes only in demo mode.

use serde_json::{json, Value};

use crate::helpers::*;

/// Subscribes the signed-in demo user to monthly Pro; returns the response (303 on success).
async fn demo_subscribe_pro(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.client
        .post(app.url("/demo/action"))
        .header("cookie", cookie)
        .form(&[
            ("action", "subscribe"),
            ("plan", "pro"),
            ("period", "monthly"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_page_renders_and_unknown_routes_are_404() {
    let app = spawn_app().await;
    for (path, text) in [
        ("/", "Premium, decided on the server"),
        ("/pricing", "Plans"),
        ("/sign-in", "Sign in"),
        ("/dashboard", "You are signed out"),
        ("/dashboard/payment-gated", "Sign in and choose a plan"),
    ] {
        let (status, html) = get_plain(&app, path, None::<Who>).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains(text), "{path}: {html}");
        assert!(
            html.contains("/pkg/plangate.js") || html.contains("plangate"),
            "{path} hydrates"
        );
    }
    let (status, html) = get_plain(&app, "/no/such/page", None::<Who>).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"));
    let api = app
        .client
        .get(app.url("/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(
        api.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
}

#[tokio::test]
async fn pricing_with_a_clerk_key_loads_clerks_scripts_from_the_frontend_api() {
    let app = spawn_app().await;
    let (_, html) = get_plain(&app, "/pricing?for=organization", None::<Who>).await;
    assert!(
        html.contains(&format!(
            "https://{FAPI_HOST}/npm/@clerk/clerk-js@6/dist/clerk.browser.js"
        )),
        "{html}"
    );
    assert!(html.contains("ui.browser.js"));
    assert!(html.contains("mountPricingTable"));
    assert!(
        html.contains(r#"for: \"organization\""#)
            || html.contains("for: &quot;organization&quot;")
            || html.contains(r#"for: "organization""#),
        "{html}"
    );
    assert!(!html.contains("sk_test_"), "no secret key in the page");
}

#[tokio::test]
async fn the_gated_page_sends_premium_markup_only_to_the_entitled() {
    let app = spawn_app().await;
    let mut c = claims("user_p");
    c["pla"] = json!("u:pro");
    let entitled = sign_token(&keys().0, &c);
    let (status, html) = get_plain(
        &app,
        "/dashboard/payment-gated",
        Some(Who::Cookie(&entitled)),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Premium insights") && html.contains("Monthly recurring revenue"),
        "{html}"
    );

    c["pla"] = json!("u:free_user");
    let free = sign_token(&keys().0, &c);
    let (status, html) =
        get_plain(&app, "/dashboard/payment-gated", Some(Who::Cookie(&free))).await;
    assert_eq!(status, 200);
    assert!(html.contains("Upgrade to open Premium"), "{html}");
    assert!(
        !html.contains("Monthly recurring revenue") && !html.contains("Premium insights"),
        "no premium text anywhere"
    );
}

#[tokio::test]
async fn demo_routes_do_not_exist_when_clerk_keys_are_configured() {
    let app = spawn_app().await;
    for path in ["/demo/mailbox", "/demo/events", "/.well-known/jwks.json"] {
        assert_eq!(get_plain(&app, path, None::<Who>).await.0, 404, "{path}");
    }
    let resp = app
        .client
        .post(app.url("/demo/action"))
        .form(&[("action", "subscribe")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn demo_mode_signs_in_and_subscribes_through_the_webhook_path() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let (_, html) = get_plain(&app, "/", None::<Who>).await;
    assert!(html.contains("Demo mode"));
    let cookie = demo_sign_in(&app, "dora").await.join("; ");
    let resp = demo_subscribe_pro(&app, &cookie).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let token = set_cookies(&resp)
        .into_iter()
        .find_map(|c| c.strip_prefix("__session=").map(str::to_string))
        .unwrap();
    let me: Value = app
        .get_with_token("/api/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["plan"], "pro");
    assert_eq!(me["status"], "active");
    assert_eq!(me["entitled"], true);
    // The events went through the inbox like Clerk's would.
    assert!(app.event_count().await >= 5);
}

/// Signed-out renders of /pricing are reused; nobody with a session ever gets one, including a
/// demo visitor whose session is refreshed from the client cookie on the way in.
#[tokio::test]
async fn a_signed_out_pricing_page_is_never_served_to_a_signed_in_visitor() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let (_, anonymous) = get_plain(&app, "/pricing", None::<Who>).await;
    assert!(anonymous.contains("Sign in to subscribe"), "{anonymous}");
    let (_, again) = get_plain(&app, "/pricing", None::<Who>).await;
    // Each response has its own CSP nonce; apart from it, the bytes are the same.
    let (n1, n2) = (
        crate::security::nonce_in(&anonymous),
        crate::security::nonce_in(&again),
    );
    assert_ne!(n1, n2);
    assert_eq!(
        again.replace(&n2, "NONCE"),
        anonymous.replace(&n1, "NONCE"),
        "the same page for every signed-out visitor"
    );

    let cookies = demo_sign_in(&app, "cato").await;
    assert_eq!(
        demo_subscribe_pro(&app, &cookies.join("; ")).await.status(),
        303
    );

    let with_cookies = |cookie: String| {
        let req = app.client.get(app.url("/pricing")).header("cookie", cookie);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let signed_in = with_cookies(cookies.join("; ")).await;
    assert!(signed_in.contains("Current plan"), "{signed_in}");
    // Signed in, but the session cookie gone: a page navigation is sent through the demo
    // issuer's handshake, never answered with the cached signed-out page.
    let client_only: Vec<String> = cookies
        .iter()
        .filter(|c| !c.starts_with("__session="))
        .cloned()
        .collect();
    assert!(!client_only.is_empty());
    let navigation = app
        .client
        .get(app.url("/pricing"))
        .header("cookie", client_only.join("; "))
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap();
    assert_eq!(navigation.status(), 307);
    assert!(navigation.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/demo/v1/client/handshake?"));

    let (_, still_anonymous) = get_plain(&app, "/pricing", None::<Who>).await;
    assert!(!still_anonymous.contains("Current plan"));
    assert!(still_anonymous.contains("Sign in to subscribe"));
}

/// The demo mailbox shows a mail as its recipient reads it: the payment-failed notice's long
/// lines, sent quoted-printable (soft line breaks `=` at 76 columns), are decoded back.
#[tokio::test]
async fn the_demo_mailbox_shows_mail_decoded_as_its_recipient_reads_it() {
    let app = spawn_with(Options {
        demo: true,
        ..Default::default()
    })
    .await;
    let cookie = demo_sign_in(&app, "quinn").await.join("; ");
    let resp = demo_subscribe_pro(&app, &cookie).await;
    assert_eq!(resp.status(), 303);
    let resp = app
        .client
        .post(app.url("/demo/action"))
        .header("cookie", &cookie)
        .form(&[("action", "fail_payment")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let sentence = "Your subscription is now past due. Stripe will retry the charge \
                    automatically over the next days; you do not need to do anything if the \
                    card is fine.";
    let mut html = String::new();
    for _ in 0..100 {
        html = app
            .client
            .get(app.url("/demo/mailbox"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if html.contains("Payment failed for your Pro subscription") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        html.contains("Payment failed for your Pro subscription"),
        "{html}"
    );
    assert!(html.contains(sentence), "{html}");
    assert!(!html.contains("=\n"), "soft line breaks shown: {html}");
}
