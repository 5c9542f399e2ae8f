//! Prometheus series (README, "Operations"), on the `prometheus` crate with a registry per application
//! (two apps in one test process, or two instances, never mix their counts). Counters and the
//! histogram are updated where things happen; the inbox and outbox gauges are read from the
//! database when scraped, so every instance reports the shared truth.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// `type`, `outcome`.
    pub webhooks: IntCounterVec,
    /// `reason`.
    pub webhook_rejections: IntCounterVec,
    pub webhook_apply_seconds: Histogram,
    pub inbox_failed: IntGauge,
    pub outbox_pending: IntGauge,
    pub outbox_failed: IntGauge,
    /// `allowed`.
    pub gate_decisions: IntCounterVec,
    pub reconcile_corrections: IntCounter,
    /// `result`: `ok` or `error`.
    pub reconcile_runs: IntCounterVec,
    pub reconcile_last_success: IntGauge,
    /// Backend API responses by `status` class (`2xx`, `429`, `5xx`, `error`, …).
    pub clerk_api_requests: IntCounterVec,
    pub invalidation_listening: IntGauge,
    pub database_up: IntGauge,
    /// `feature`: units spent of metered features.
    pub usage_consumed: IntCounterVec,
    /// `feature`: requests refused because the payer's limit was reached.
    pub usage_limited: IntCounterVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only a malformed name or a name registered twice fails; both are programming errors.
    r.expect("metric definition")
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let webhooks = counter_vec(
            "plangate_webhooks_total",
            "Verified webhook deliveries by event type and outcome.",
            &["type", "outcome"],
        );
        let webhook_rejections = counter_vec(
            "plangate_webhook_rejections_total",
            "Webhook deliveries refused before anything was stored, by reason.",
            &["reason"],
        );
        let webhook_apply_seconds = must(Histogram::with_opts(
            HistogramOpts::new(
                "plangate_webhook_apply_seconds",
                "Time from a verified delivery to its durable commit.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        ));
        must(registry.register(Box::new(webhook_apply_seconds.clone())));
        let inbox_failed = gauge(
            "plangate_inbox_failed",
            "Deliveries stored as failed (dead letters) awaiting a redelivery or a replay.",
        );
        let outbox_pending = gauge(
            "plangate_outbox_pending",
            "Mails queued in the outbox and not yet sent.",
        );
        let outbox_failed = gauge(
            "plangate_outbox_failed",
            "Mails given up on: refused for good by the mail server (a 5xx), or not accepted within 24 hours.",
        );
        let usage_consumed = counter_vec(
            "plangate_usage_consumed_total",
            "Units of metered features spent, by feature.",
            &["feature"],
        );
        let usage_limited = counter_vec(
            "plangate_usage_limited_total",
            "Requests refused because the payer had no units of the feature left, by feature.",
            &["feature"],
        );
        let gate_decisions = counter_vec(
            "plangate_gate_decisions_total",
            "Entitlement decisions by whether they allowed.",
            &["allowed"],
        );
        let reconcile_corrections = must(IntCounter::new(
            "plangate_reconcile_corrections_total",
            "Subscription items corrected from Clerk's Backend API.",
        ));
        must(registry.register(Box::new(reconcile_corrections.clone())));
        let reconcile_runs = counter_vec(
            "plangate_reconcile_runs_total",
            "Reconciliation runs (sweeps and single payers) by result.",
            &["result"],
        );
        let reconcile_last_success = gauge(
            "plangate_reconcile_last_success_timestamp_seconds",
            "Unix time of the last reconciliation sweep that read the Backend API completely.",
        );
        let clerk_api_requests = counter_vec(
            "plangate_clerk_api_requests_total",
            "Backend API requests by response status class (2xx, 4xx, 429, 5xx, error).",
            &["status"],
        );
        let invalidation_listening = gauge(
            "plangate_invalidation_listening",
            "1 while this instance hears the other instances' changes (PostgreSQL LISTEN), else 0.",
        );
        let database_up = gauge(
            "plangate_database_up",
            "1 when the last scrape could read the database, else 0 (the database gauges then keep their last values).",
        );
        Metrics {
            registry,
            webhooks,
            webhook_rejections,
            webhook_apply_seconds,
            inbox_failed,
            outbox_pending,
            outbox_failed,
            gate_decisions,
            reconcile_corrections,
            reconcile_runs,
            reconcile_last_success,
            clerk_api_requests,
            invalidation_listening,
            database_up,
            usage_consumed,
            usage_limited,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_series_of_the_design_is_exposed() {
        let m = super::Metrics::new();
        m.webhooks
            .with_label_values(&["user.created", "applied"])
            .inc();
        m.webhook_rejections.with_label_values(&["signature"]).inc();
        m.gate_decisions.with_label_values(&["true"]).inc();
        m.reconcile_runs.with_label_values(&["ok"]).inc();
        m.clerk_api_requests.with_label_values(&["2xx"]).inc();
        m.webhook_apply_seconds.observe(0.002);
        let text = m.render();
        for series in [
            "plangate_webhooks_total{outcome=\"applied\",type=\"user.created\"} 1",
            "plangate_webhook_rejections_total{reason=\"signature\"} 1",
            "plangate_webhook_apply_seconds_bucket{le=\"0.0025\"} 1",
            "plangate_inbox_failed 0",
            "plangate_outbox_pending 0",
            "plangate_gate_decisions_total{allowed=\"true\"} 1",
            "plangate_reconcile_corrections_total 0",
            "plangate_reconcile_last_success_timestamp_seconds 0",
            "plangate_invalidation_listening 0",
            "plangate_database_up 0",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }
}
