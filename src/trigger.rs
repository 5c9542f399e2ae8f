//! `plangate trigger <event-type>`: builds a realistic Clerk event, signs it like Svix and POSTs
//! it, like `stripe trigger`. `--repeat N` resends the same delivery (same svix-id) to rehearse
//! retries; `--shuffle` sends a whole lifecycle in random order.

use anyhow::{bail, Context};

use crate::cli::TriggerArgs as Args;
use crate::demo::{
    delivery,
    events::{self, Spec, DAY_MS},
};

fn spec(a: &Args, status: &str, at: i64) -> Spec {
    let item = a
        .item
        .clone()
        .unwrap_or_else(|| format!("csub_item_{}_{}", a.user, a.plan));
    Spec {
        user_id: a.user.clone(),
        email: a
            .email
            .clone()
            .unwrap_or_else(|| format!("{}@example.com", a.user)),
        org_id: a.org.clone(),
        plan_slug: a.plan.clone(),
        plan_name: a.plan.clone(),
        amount_cents: 2000,
        annual: false,
        subscription_id: format!("csub_{}", a.user),
        item_id: item,
        status: status.into(),
        period_start: at,
        period_end: Some(at + 30 * DAY_MS),
        canceled_at: (status == "canceled").then_some(at),
        past_due_at: (status == "past_due" || status == "failed").then_some(at),
        free_trial: false,
        at,
    }
}

/// Sends what `a` asks for; the secret is `--secret`, else the configured webhook secret.
pub async fn run(a: Args, configured_secret: Option<String>) -> anyhow::Result<()> {
    if a.list {
        for t in events::TYPES {
            println!("{t}");
        }
        return Ok(());
    }
    let secret = a
        .secret
        .clone()
        .or(configured_secret)
        .context("--secret (or CLERK_WEBHOOK_SECRET) is required")?;
    let http = reqwest::Client::new();
    let now = crate::db::now_ms();
    let mut plan: Vec<(String, serde_json::Value)> = Vec::new();
    if a.shuffle {
        let steps = [
            ("subscription.created", "active"),
            ("subscriptionItem.active", "active"),
            ("paymentAttempt.updated", "failed"),
            ("subscriptionItem.pastDue", "past_due"),
            ("subscriptionItem.active", "active"),
            ("subscriptionItem.canceled", "canceled"),
            ("subscriptionItem.ended", "ended"),
        ];
        for (i, (t, status)) in steps.iter().enumerate() {
            plan.push((
                t.to_string(),
                events::build(t, &spec(&a, status, now + i as i64 * 1000)).context("build")?,
            ));
        }
        use rand::seq::SliceRandom;
        plan.shuffle(&mut rand::thread_rng());
    } else {
        let t = a.event_type.clone().context(crate::cli::USAGE)?;
        let status = if t == "paymentAttempt.updated" {
            "failed".to_string()
        } else {
            events::status_for(&t).unwrap_or("active").to_string()
        };
        let body = events::build(&t, &spec(&a, &status, now))
            .with_context(|| format!("unknown event type {t}; see --list"))?;
        plan.push((t, body));
    }
    let mut refused = 0;
    for (t, body) in plan {
        let body = body.to_string();
        // One delivery id per event: repeats are retries of the same delivery.
        let id = events::new_id("msg");
        for n in 0..a.repeat.max(1) {
            let (status, text) = delivery::post(&http, &a.url, &secret, &id, &body).await?;
            println!("{t} #{} {id} → {status} {text}", n + 1);
            if !(200..300).contains(&status) {
                refused += 1;
            }
        }
    }
    if refused > 0 {
        bail!("{refused} delivery attempt(s) refused");
    }
    Ok(())
}
