//! Micro benchmarks for what sits on every request: webhook verification of a 2 KB body,
//! session token verification, and the entitlement decision.

use std::hint::black_box;

use axum::http::{HeaderMap, HeaderValue};
use criterion::{criterion_group, criterion_main, Criterion};
use plangate::{
    auth::{KeyStore, TokenVerifier},
    billing::{
        self,
        subscription::{ItemPayer, PayerKind},
        Catalog, Evidence, ItemState, Policy, Status, TokenPlan,
    },
    demo::{delivery::svix_headers, SigningKey},
    webhooks::verify::Verifier,
};
use secrecy::SecretString;
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn webhook_verification(c: &mut Criterion) {
    let body =
        json!({"type": "subscriptionItem.active", "data": {"pad": "x".repeat(1900)}}).to_string();
    assert!((1900..2200).contains(&body.len()));
    let ts = plangate::db::now_ms() / 1000;
    let mut headers = HeaderMap::new();
    for (name, value) in svix_headers(SECRET, "msg_1", ts, body.as_bytes()).unwrap() {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    let verifier = Verifier::new(&[SecretString::from(SECRET.to_string())]);
    c.bench_function("webhook_verify_2kb", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&headers), black_box(body.as_bytes()))
                .unwrap()
        })
    });
}

fn token_verification(c: &mut Criterion) {
    let key = SigningKey::generate("k").unwrap();
    let t = plangate::db::now_ms() / 1000;
    let token = key.sign(&json!({"sub": "user_1", "sid": "sess_1", "iss": "https://a.clerk.accounts.dev",
        "azp": "http://localhost:3000", "iat": t, "nbf": t, "exp": t + 3600, "v": 2, "pla": "u:pro"})).unwrap();
    let verifier = TokenVerifier::new(
        KeyStore::pem(&key.public_pem).unwrap(),
        "https://a.clerk.accounts.dev".into(),
        vec!["http://localhost:3000".into()],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    c.bench_function("session_token_verify_rs256_uncached", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify_uncached(black_box(&token), t))
                .unwrap()
        })
    });
    c.bench_function("session_token_verify_cached", |b| {
        b.iter(|| rt.block_on(verifier.verify(black_box(&token), t)).unwrap())
    });
}

fn entitlement(c: &mut Criterion) {
    let catalog = Catalog::from_toml(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml")).unwrap(),
    )
    .unwrap();
    let gate = catalog.gate("premium").unwrap().clone();
    let item = ItemState {
        id: "csub_item_1".into(),
        subscription_id: None,
        payer: ItemPayer {
            kind: PayerKind::User,
            id: "user_1".into(),
            user_id: Some("user_1".into()),
            email: None,
        },
        plan_slug: "pro".into(),
        plan_name: None,
        status: Status::Canceled,
        period_start: Some(0),
        period_end: Some(i64::MAX),
        is_free_trial: false,
        canceled_at: None,
        past_due_at: None,
        event_at: 10,
        inferred: false,
        standing: Default::default(),
    };
    let ev = Evidence {
        user_item: Some(&item),
        token_plan: TokenPlan::parse("u:pro"),
        token_iat_ms: 5,
        token_features: vec!["u:premium_dashboard".into()],
        ..Default::default()
    };
    c.bench_function("entitlement_decide", |b| {
        b.iter(|| {
            billing::decide(
                black_box(&ev),
                &catalog,
                &gate,
                1_000,
                Policy::with_grace_days(0),
            )
        })
    });
}

criterion_group!(
    benches,
    webhook_verification,
    token_verification,
    entitlement
);
criterion_main!(benches);
