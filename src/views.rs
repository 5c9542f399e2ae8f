//! Data shapes shared by server functions and the hydrated pages.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub demo: bool,
    pub signed_in: bool,
    pub user_id: Option<String>,
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
    pub status: Option<String>,
    pub entitled: bool,
    pub reason: String,
    pub source: String,
    pub period_end: Option<String>,
    pub access_until: Option<String>,
    pub is_free_trial: bool,
    pub paid: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Gated {
    SignedOut,
    Upgrade {
        plan: Option<String>,
        reason: String,
    },
    Premium {
        plan: String,
        report: Vec<(String, String)>,
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
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PricingView {
    pub demo: bool,
    pub for_org: bool,
    pub signed_in: bool,
    pub current_plan: Option<String>,
    pub current_status: Option<String>,
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
}
