//! Data shapes shared by server functions and the hydrated pages.

use serde::{Deserialize, Serialize};

use crate::billing::Status;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub demo: bool,
    pub signed_in: bool,
    pub user_id: Option<String>,
    /// The signed-in person's mail address, where known.
    pub name: Option<String>,
    /// Clerk mode: what the script loader needs. Public values only.
    pub clerk: Option<ClerkScripts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClerkScripts {
    pub publishable_key: String,
    pub js_url: String,
    pub ui_url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub signed_in: bool,
    pub demo: bool,
    pub user_id: String,
    pub org_id: Option<String>,
    pub plan: Option<String>,
    pub plan_name: Option<String>,
    pub status: Option<Status>,
    pub entitled: bool,
    pub reason: String,
    pub source: String,
    pub period_end: Option<String>,
    pub access_until: Option<String>,
    pub is_free_trial: bool,
    pub paid: bool,
    /// The status and the decision's reason, in words.
    pub status_words: Option<String>,
    pub reason_words: String,
    /// The date that matters ("Renews on …").
    pub date_line: Option<String>,
    /// Who is signed in, by mail address where known.
    pub name: String,
    /// Past due: why, in words, and where to fix it.
    pub failure: Option<String>,
    pub fix: Option<FixPayment>,
    /// Each limited feature of the plan this period (README, "Usage limits").
    pub meters: Vec<MeterView>,
}

/// One limited feature as a meter: used of limit, and when the count resets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeterView {
    pub feature: String,
    /// In words (`premium api`).
    pub name: String,
    pub used: u64,
    pub limit: u64,
    /// The day the period ends and the count starts again.
    pub resets: String,
}

impl MeterView {
    pub fn at_limit(&self) -> bool {
        self.used >= self.limit
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Gated {
    SignedOut,
    Upgrade {
        /// The plan's name from `plans.toml` (`None`: no plan).
        plan: Option<String>,
        /// The decision's reason, in words.
        reason: String,
        /// The plans to choose from.
        pricing: PricingView,
    },
    /// The plan opens it, another dimension of the gate does not (a role in the organization,
    /// or a recent sign-in): what is missing, never an upsell.
    NotAuthorized {
        /// The decision's reason, in words.
        reason: String,
        /// A recent sign-in is what is missing.
        reverify: bool,
    },
    /// A paying subscriber whose payment failed: the way to fix it, never an upsell.
    PastDue {
        plan: String,
        failure: String,
        fix: FixPayment,
    },
    Premium {
        plan: String,
        report: Vec<(String, String)>,
        meters: Vec<MeterView>,
        demo: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub monthly: String,
    pub annual: Option<String>,
    pub free: bool,
    /// Days of free trial the plan offers (0: none).
    pub trial_days: u32,
    pub features: Vec<String>,
}

/// Where a past-due subscriber fixes their payment method: Clerk's account portal, or in demo
/// mode the demo's "simulate recovery".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FixPayment {
    Portal(String),
    DemoRecover,
}

/// `/dashboard/api-keys`: the caller's API keys (demo mode), or Clerk's own component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKeysView {
    pub signed_in: bool,
    pub demo: bool,
    pub keys: Vec<ApiKeyRow>,
    /// A key just made: its secret, shown this once.
    pub new_secret: Option<String>,
    /// Where the metered API answers (`APP_URL/api/premium-feature`).
    pub api_url: String,
    /// The gate probe (`APP_URL/api/gates/premium`).
    pub probe_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub created: String,
    pub revoked: Option<String>,
}

/// `/dashboard/billing`: the caller's billing, and their active organization's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BillingView {
    pub signed_in: bool,
    pub demo: bool,
    pub accounts: Vec<PayerBilling>,
    /// Clerk's account portal (Clerk mode): where the payment method is managed.
    pub portal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayerBilling {
    /// "Your subscription", or "Organization <slug or id>".
    pub heading: String,
    pub plan: String,
    /// "$20 a month" (paid plans).
    pub price: Option<String>,
    pub status: Option<String>,
    /// The date that matters, in words ("Renews on 3 January 2027").
    pub date_line: Option<String>,
    /// Past due: why, in words.
    pub failure: Option<String>,
    pub paid: bool,
    pub payments: Vec<PaymentRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRow {
    pub date: String,
    pub amount: String,
    pub status: String,
    pub failed: bool,
    /// "Visa ending in 4242".
    pub card: Option<String>,
    /// Why it failed, in words.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PricingView {
    pub demo: bool,
    pub for_org: bool,
    pub signed_in: bool,
    pub current_plan: Option<String>,
    pub current_status: Option<Status>,
    pub plans: Vec<PlanView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailView {
    pub file: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub svix_id: String,
    pub event_type: String,
    pub received: String,
    pub outcome: String,
    /// A dead letter: shown with its reason and a Replay button.
    pub failed: bool,
    pub reason: Option<String>,
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SS.mmmZ`) of a Unix time in milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        format_date(ms),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms.rem_euclid(1000)
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time in milliseconds.
pub fn format_datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        format_date(ms),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds.
pub fn format_date(ms: i64) -> String {
    let (y, m, d) = crate::billing::dates::civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_utc_calendar_time() {
        // 2026-12-01T18:05:34.042Z
        let ms = 1_796_148_334_042;
        assert_eq!(super::format_date(ms), "2026-12-01");
        assert_eq!(super::format_datetime(ms), "2026-12-01 18:05:34 UTC");
        assert_eq!(super::format_rfc3339(ms), "2026-12-01T18:05:34.042Z");
        assert_eq!(super::format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::format_datetime(86_399_999),
            "1970-01-01 23:59:59 UTC"
        );
    }
}
