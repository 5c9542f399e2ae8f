//! `plangate trigger <event-type>`: builds a realistic Clerk event, signs it like Svix and POSTs
//! it, like `stripe trigger`. `--repeat N` resends the same delivery (same svix-id) to rehearse
//! retries; `--shuffle` sends a whole lifecycle in random order.

use anyhow::{bail, Context};

use crate::demo::{
    delivery,
    events::{self, Spec, DAY_MS},
};

pub struct Args {
    pub event_type: Option<String>,
    pub url: String,
    pub secret: Option<String>,
    pub user: String,
    pub email: Option<String>,
    pub org: Option<String>,
    pub plan: String,
    pub item: Option<String>,
    pub repeat: u32,
    pub shuffle: bool,
    pub list: bool,
}

pub const USAGE: &str = "usage: plangate trigger <event-type> [--url URL] [--secret whsec_…] \
[--user ID] [--email ADDR] [--org ID] [--plan SLUG] [--item ID] [--repeat N] [--shuffle] | --list";

pub fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        event_type: None,
        url: "http://127.0.0.1:3000/api/webhooks/clerk".into(),
        secret: None,
        user: "user_demo_alice".into(),
        email: None,
        org: None,
        plan: "pro".into(),
        item: None,
        repeat: 1,
        shuffle: false,
        list: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--url" => a.url = value("--url")?,
            "--secret" => a.secret = Some(value("--secret")?),
            "--user" => a.user = value("--user")?,
            "--email" => a.email = Some(value("--email")?),
            "--org" => a.org = Some(value("--org")?),
            "--plan" => a.plan = value("--plan")?,
            "--item" => a.item = Some(value("--item")?),
            "--repeat" => {
                a.repeat = value("--repeat")?
                    .parse()
                    .context("--repeat takes a number")?
            }
            "--shuffle" => a.shuffle = true,
            "--list" => a.list = true,
            s if s.starts_with("--") => bail!("unknown option {s}\n{USAGE}"),
            s => a.event_type = Some(s.to_string()),
        }
    }
    Ok(a)
}

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
        at,
    }
}

pub async fn run(args: &[String], configured_secret: Option<String>) -> anyhow::Result<()> {
    let a = parse(args)?;
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
        let t = a.event_type.clone().context(USAGE)?;
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
