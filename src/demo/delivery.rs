//! Svix's side of a delivery: the three headers that sign a body, and the signed POST. The one
//! signing helper of demo mode, `plangate trigger`, the tests and the benchmarks.

use anyhow::Context;

/// `svix-id`, `svix-timestamp` (seconds) and `svix-signature` for `body`, as Svix sends them.
pub fn svix_headers(
    secret: &str,
    id: &str,
    ts: i64,
    body: &[u8],
) -> anyhow::Result<[(&'static str, String); 3]> {
    let hook = svix::webhooks::Webhook::new(secret)
        .map_err(|_| anyhow::anyhow!("not a whsec_ signing secret"))?;
    let signature = hook
        .sign(id, ts, body)
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    Ok([
        ("svix-id", id.to_string()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", signature),
    ])
}

/// Signs `body` as delivery `id`, timestamped now, and POSTs it to `url`; returns the status
/// and the response body.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let ts = crate::auth::now_secs();
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in svix_headers(secret, id, ts, body.as_bytes())? {
        request = request.header(name, value);
    }
    let resp = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// Signs and POSTs each of `bodies` in order, each under a new delivery id; stops at the first
/// delivery the endpoint does not acknowledge (2xx), saying which answer it got.
pub async fn post_all(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    bodies: Vec<serde_json::Value>,
) -> anyhow::Result<()> {
    for body in bodies {
        let id = super::events::new_id("msg");
        let (status, text) = post(http, url, secret, &id, &body.to_string()).await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "the webhook endpoint answered {status} {text}"
        );
    }
    Ok(())
}
