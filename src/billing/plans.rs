//! Plans and gates from `plans.toml`. A gate names the plans (`u:pro`, `o:team`) or features it
//! allows; there is no "anything but free" rule, so a plan nobody listed never opens a gate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::authorization::Reverification;

use super::kinds::PayerKind;

#[derive(Debug, thiserror::Error)]
pub enum PlansError {
    #[error("plans file is not valid TOML: {0}")]
    Parse(String),
    #[error("plans file: {0}")]
    Invalid(String),
}

/// Splits `u:pro` / `ou:reports` into the scopes it covers and the name.
pub fn parse_scoped(entry: &str) -> Option<(Vec<PayerKind>, &str)> {
    let (scope, name) = entry.trim().split_once(':')?;
    if name.is_empty() {
        return None;
    }
    let scopes = match scope {
        "u" => vec![PayerKind::User],
        "o" => vec![PayerKind::Org],
        "ou" | "uo" => vec![PayerKind::User, PayerKind::Org],
        _ => return None,
    };
    Some((scopes, name))
}

/// A key the file does not know (a misspelt `monthly_cent`) stops the start rather than being
/// ignored: a price or a feature silently missing is worse than a refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub slug: String,
    pub name: String,
    #[serde(rename = "for", default = "default_for")]
    pub payer: String,
    #[serde(default)]
    pub description: String,
    /// Price per month, in cents, billed monthly.
    #[serde(default)]
    pub monthly_cents: u32,
    /// Price per year, in cents, billed annually (0 = no annual option).
    #[serde(default)]
    pub annual_cents: u32,
    #[serde(default)]
    pub features: Vec<String>,
    /// Units per billing period of a metered feature (README, "Usage limits"), as written;
    /// checked at load (`Catalog::validate`), read through `Plan::limit`.
    #[serde(default)]
    pub limits: BTreeMap<String, toml::Value>,
    /// Days of free trial before the first charge, as configured on the plan in Clerk (0: none).
    #[serde(default)]
    pub trial_days: u32,
}

/// The largest limit or grant (README, "Usage limits"): no sum of them overflows either database.
pub const MAX_UNITS: u64 = 1_000_000_000_000;

/// How much of a feature a plan allows per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The plan has the feature and sets no limit on it.
    Unlimited,
    /// At most this many units per period (0 when the plan lacks the feature).
    Units(u64),
}

fn default_for() -> String {
    "user".into()
}

impl Plan {
    pub fn scope(&self) -> PayerKind {
        if self.payer == "organization" {
            PayerKind::Org
        } else {
            PayerKind::User
        }
    }
    pub fn is_free(&self) -> bool {
        self.monthly_cents == 0 && self.annual_cents == 0
    }
    /// The plan's limit on `feature`: its `limits` entry, else unlimited when the plan has the
    /// feature, else none at all.
    pub fn limit(&self, feature: &str) -> Limit {
        match self.limits.get(feature).map(toml::Value::as_integer) {
            Some(Some(n)) => Limit::Units(u64::try_from(n).unwrap_or(0)),
            Some(None) => Limit::Units(0),
            None if self.features.iter().any(|f| f == feature) => Limit::Unlimited,
            None => Limit::Units(0),
        }
    }

    /// The price of one billing period, in cents.
    pub fn price_cents(&self, annual: bool) -> u32 {
        if annual {
            self.annual_cents
        } else {
            self.monthly_cents
        }
    }
}

/// A gate: who may open what is behind it, in the dimensions of Clerk's `has()` (README, "Plans
/// and gates"). Every dimension it names must pass; each list allows any one of its entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The billing dimension: plans (`u:pro`, `o:team`) and features.
    #[serde(default)]
    pub plans: Vec<String>,
    #[serde(default)]
    pub features: Vec<String>,
    /// The organization dimension: roles (`admin` = `org:admin`) and permissions
    /// (`org:<feature>:<permission>`) in the active organization.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// How recent a verification opening it needs: a preset or a custom level.
    #[serde(default)]
    pub reverification: Option<ReverificationSpec>,
    /// The metered feature a call behind it spends (what the gate probe shows).
    #[serde(default)]
    pub meter: Option<String>,
}

/// `reverification = "strict"` or `reverification = { level = "second_factor", after_minutes = 30 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReverificationSpec {
    Preset(String),
    Custom(CustomReverification),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomReverification {
    pub level: String,
    pub after_minutes: i64,
}

impl ReverificationSpec {
    /// The requirement, `None` when it is not one Clerk knows.
    pub fn requirement(&self) -> Option<Reverification> {
        match self {
            ReverificationSpec::Preset(name) => Reverification::preset(name),
            ReverificationSpec::Custom(c) => Reverification::custom(&c.level, c.after_minutes),
        }
    }
}

impl Gate {
    /// Whether it names plans or features.
    pub fn names_billing(&self) -> bool {
        !self.plans.is_empty() || !self.features.is_empty()
    }

    /// Whether it names roles or permissions.
    pub fn names_organization(&self) -> bool {
        !self.roles.is_empty() || !self.permissions.is_empty()
    }

    /// Whether it names anything beyond billing (the entitlement decision's slower path).
    pub fn names_authorization(&self) -> bool {
        self.names_organization() || self.reverification.is_some()
    }

    /// Its reverification requirement (checked at start: a gate's spec always reads).
    pub fn requirement(&self) -> Option<Reverification> {
        self.reverification
            .as_ref()
            .and_then(ReverificationSpec::requirement)
    }

    pub fn allows_plan(&self, scope: PayerKind, slug: &str) -> bool {
        self.plans.iter().any(|entry| {
            parse_scoped(entry)
                .is_some_and(|(scopes, name)| scopes.contains(&scope) && name == slug)
        })
    }

    /// `features` are bare names as they appear in a plan's `features` or the token's `fea`.
    pub fn allows_any_feature<'a>(
        &self,
        scope: PayerKind,
        mut features: impl Iterator<Item = &'a str>,
    ) -> bool {
        features.any(|f| {
            self.features.iter().any(|entry| {
                parse_scoped(entry)
                    .is_some_and(|(scopes, name)| scopes.contains(&scope) && name == f)
            })
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub plans: Vec<Plan>,
    #[serde(default)]
    pub gates: BTreeMap<String, Gate>,
}

impl Catalog {
    pub fn from_toml(text: &str) -> Result<Catalog, PlansError> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|e| PlansError::Parse(e.to_string()))?;
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), PlansError> {
        for p in &self.plans {
            if p.slug.is_empty()
                || !p
                    .slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(PlansError::Invalid(format!(
                    "plan slug `{}` must be [a-z0-9_-]",
                    p.slug
                )));
            }
            if p.trial_days > 365 || (p.trial_days > 0 && p.is_free()) {
                return Err(PlansError::Invalid(format!(
                    "plan `{}`: `trial_days` must be 0–365, on a paid plan",
                    p.slug
                )));
            }
            if p.payer != "user" && p.payer != "organization" {
                return Err(PlansError::Invalid(format!(
                    "plan `{}`: `for` must be `user` or `organization`",
                    p.slug
                )));
            }
            for (feature, value) in &p.limits {
                if !p.features.contains(feature) {
                    return Err(PlansError::Invalid(format!(
                        "plan `{}`: a limit on `{feature}`, a feature the plan does not have \
                         (add it to `features` or remove the limit)",
                        p.slug
                    )));
                }
                let max = MAX_UNITS as i64;
                if value.as_integer().is_none_or(|n| !(1..=max).contains(&n)) {
                    return Err(PlansError::Invalid(format!(
                        "plan `{}`: the limit on `{feature}` must be a whole number of units \
                         from 1 to {max} (found {value:?})",
                        p.slug
                    )));
                }
            }
        }
        for (name, gate) in &self.gates {
            for entry in gate.plans.iter().chain(&gate.features) {
                if parse_scoped(entry).is_none() {
                    return Err(PlansError::Invalid(format!(
                        "gate `{name}`: `{entry}` must be scoped, e.g. `u:pro` or `o:team`"
                    )));
                }
            }
            for entry in gate.roles.iter().chain(&gate.permissions) {
                let bare = entry.strip_prefix("org:").unwrap_or(entry);
                if bare.is_empty() || entry.contains(|c: char| c == ',' || c.is_whitespace()) {
                    return Err(PlansError::Invalid(format!(
                        "gate `{name}`: `{entry}` is not a role or permission key \
                         (e.g. `admin`, `org:reports:read`)"
                    )));
                }
            }
            if let Some(spec) = &gate.reverification {
                if spec.requirement().is_none() {
                    return Err(PlansError::Invalid(format!(
                        "gate `{name}`: reverification must be `strict_mfa`, `strict`, \
                         `moderate`, `lax`, or {{ level = \"first_factor\"|\"second_factor\"|\
                         \"multi_factor\", after_minutes = N }} with N > 0 (found {spec:?})"
                    )));
                }
            }
            if let Some(m) = &gate.meter {
                if !self
                    .plans
                    .iter()
                    .any(|p| p.limits.contains_key(m) || p.features.contains(m))
                {
                    return Err(PlansError::Invalid(format!(
                        "gate `{name}`: meter `{m}` is not a feature of any plan"
                    )));
                }
            }
            if !gate.names_billing() && !gate.names_authorization() {
                return Err(PlansError::Invalid(format!("gate `{name}` allows nothing")));
            }
        }
        if !self.gates.contains_key("premium") {
            return Err(PlansError::Invalid("a `premium` gate is required".into()));
        }
        Ok(())
    }

    /// `(gate, slug)` for every plan a gate names that this catalog does not define.
    pub fn unknown_gate_plans(&self) -> Vec<(&str, &str)> {
        self.gates
            .iter()
            .flat_map(|(name, gate)| gate.plans.iter().map(move |e| (name.as_str(), e)))
            .filter_map(|(name, entry)| parse_scoped(entry).map(|(_, slug)| (name, slug)))
            .filter(|(_, slug)| self.plan(slug).is_none())
            .collect()
    }

    pub fn plan(&self, slug: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.slug == slug)
    }

    pub fn gate(&self, name: &str) -> Option<&Gate> {
        self.gates.get(name)
    }

    /// Every feature some plan limits, in name order: the metered features.
    pub fn metered_features(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .plans
            .iter()
            .flat_map(|p| p.limits.keys().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn plans_for(&self, scope: PayerKind) -> impl Iterator<Item = &Plan> {
        self.plans.iter().filter(move |p| p.scope() == scope)
    }
}

/// A feature slug in words for pages and mail: `premium_api` → `Premium API`.
pub fn feature_words(slug: &str) -> String {
    slug.split(['_', '-'])
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, w)| match w {
            "api" | "sso" | "csv" | "pdf" => w.to_uppercase(),
            _ if i == 0 => {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_gate(gate: &str) -> Result<Catalog, PlansError> {
        Catalog::from_toml(&format!(
            r#"
            [[plans]]
            slug = "pro"
            name = "Pro"
            monthly_cents = 2000
            features = ["premium_api"]

            [gates.premium]
            plans = ["u:pro"]

            [gates.other]
            {gate}
            "#
        ))
    }

    #[test]
    fn slugs_and_trials_are_checked_at_start() {
        let plan = |slug: &str, monthly: u32, trial: u32| {
            Catalog::from_toml(&format!(
                r#"
                [[plans]]
                slug = "{slug}"
                name = "P"
                monthly_cents = {monthly}
                trial_days = {trial}
                [gates.premium]
                plans = ["u:{slug}"]
                "#
            ))
        };
        for ok in ["pro", "pro-2_X"] {
            assert!(plan(ok, 100, 0).is_ok(), "{ok}");
        }
        for bad in ["", "pro plan", "a/b", "é"] {
            assert!(plan(bad, 100, 0).is_err(), "{bad:?}");
        }
        assert!(plan("pro", 100, 365).is_ok());
        assert!(plan("pro", 100, 1).is_ok());
        assert!(plan("pro", 100, 366).is_err());
        assert!(plan("pro", 0, 1).is_err(), "a trial of a free plan");
        assert!(plan("pro", 0, 0).is_ok());
    }

    #[test]
    fn a_gate_feature_opens_only_in_its_scope_and_by_its_name() {
        let g = Gate {
            features: vec!["u:a".into()],
            ..Gate::default()
        };
        assert!(g.allows_any_feature(PayerKind::User, ["a"].into_iter()));
        assert!(!g.allows_any_feature(PayerKind::User, ["b"].into_iter()));
        assert!(!g.allows_any_feature(PayerKind::Org, ["a"].into_iter()));
    }

    #[test]
    fn a_gate_may_name_roles_permissions_and_reverification_and_nothing_else_passes() {
        for ok in [
            r#"roles = ["admin"]"#,
            r#"roles = ["org:admin", "billing_manager"]"#,
            r#"permissions = ["org:reports:read"]"#,
            r#"reverification = "strict_mfa""#,
            r#"reverification = "lax""#,
            r#"reverification = { level = "first_factor", after_minutes = 1 }"#,
            r#"plans = ["u:pro"]
               roles = ["admin"]
               reverification = "moderate"
               meter = "premium_api""#,
        ] {
            let c = with_gate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(c
                .gate("other")
                .is_some_and(|g| g.names_billing() || g.names_authorization()));
        }
        for (bad, says) in [
            ("", "allows nothing"),
            ("roles = []", "allows nothing"),
            (r#"roles = [""]"#, "not a role or permission"),
            (r#"roles = ["org:"]"#, "not a role or permission"),
            (
                r#"permissions = ["org:a:read, org:b:read"]"#,
                "not a role or permission",
            ),
            (r#"permissions = ["a b"]"#, "not a role or permission"),
            (r#"reverification = "Strict""#, "reverification must be"),
            (r#"reverification = "none""#, "reverification must be"),
            (
                r#"reverification = { level = "third_factor", after_minutes = 5 }"#,
                "reverification must be",
            ),
            (
                r#"reverification = { level = "first_factor", after_minutes = 0 }"#,
                "reverification must be",
            ),
            (
                r#"reverification = { level = "first_factor", after_minutes = -5 }"#,
                "reverification must be",
            ),
            (r#"reverification = { level = "first_factor" }"#, ""),
            (
                r#"reverification = { level = "first_factor", after_minutes = 5, extra = 1 }"#,
                "",
            ),
            (
                r#"plans = ["u:pro"]
               meter = "nothing_metered""#,
                "meter `nothing_metered`",
            ),
            (r#"scopes = ["x"]"#, ""),
        ] {
            let e = with_gate(bad).expect_err(bad).to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let c =
            with_gate(r#"reverification = { level = "multi_factor", after_minutes = 7 }"#).unwrap();
        assert_eq!(
            c.gate("other").unwrap().requirement(),
            Some(Reverification {
                level: crate::billing::authorization::Level::MultiFactor,
                after_minutes: 7
            })
        );
        assert_eq!(c.gate("premium").unwrap().requirement(), None);
        let g = c.gate("premium").unwrap();
        assert!(g.names_billing() && !g.names_organization() && !g.names_authorization());
    }

    #[test]
    fn an_unknown_key_anywhere_stops_the_file() {
        let ok = r#"
            [[plans]]
            slug = "pro"
            name = "Pro"
            monthly_cents = 2000

            [gates.premium]
            plans = ["u:pro"]
        "#;
        assert!(Catalog::from_toml(ok).is_ok());
        for (from, to, key) in [
            ("monthly_cents", "monthly_cent", "monthly_cent"),
            (
                "name = \"Pro\"",
                "name = \"Pro\"\nfeatrues = []",
                "featrues",
            ),
            (
                "plans = [\"u:pro\"]",
                "plans = [\"u:pro\"]\nfeature = []",
                "feature",
            ),
            ("[[plans]]", "currency = \"usd\"\n[[plans]]", "currency"),
        ] {
            let bad = ok.replacen(from, to, 1);
            let e = Catalog::from_toml(&bad).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    const SAMPLE: &str = r#"
        [[plans]]
        slug = "free_user"
        name = "Free"
        [[plans]]
        slug = "pro"
        name = "Pro"
        monthly_cents = 2000
        annual_cents = 19200
        features = ["reports"]
        [[plans]]
        slug = "team"
        name = "Team"
        for = "organization"
        monthly_cents = 9900
        [gates.premium]
        plans = ["u:pro", "o:team"]
        features = ["ou:reports"]
    "#;

    #[test]
    fn a_gate_naming_a_plan_the_catalog_lacks_is_reported() {
        assert!(Catalog::from_toml(SAMPLE)
            .unwrap()
            .unknown_gate_plans()
            .is_empty());
        let typo = SAMPLE.replace(
            r#"plans = ["u:pro", "o:team"]"#,
            r#"plans = ["u:pro", "o:teams", "u:gold"]"#,
        );
        let c = Catalog::from_toml(&typo).unwrap();
        assert_eq!(
            c.unknown_gate_plans(),
            vec![("premium", "teams"), ("premium", "gold")]
        );
    }

    #[test]
    fn a_plan_costs_its_monthly_or_its_annual_price() {
        let c = Catalog::from_toml(SAMPLE).unwrap();
        let pro = c.plan("pro").unwrap();
        assert_eq!(
            (pro.price_cents(false), pro.price_cents(true)),
            (2000, 19200)
        );
        assert!(!pro.is_free() && c.plan("free_user").unwrap().is_free());
        assert!(
            !c.plan("team").unwrap().is_free(),
            "monthly only is still paid"
        );
    }

    #[test]
    fn gates_allow_only_the_scoped_plans_they_name() {
        let c = Catalog::from_toml(SAMPLE).unwrap();
        let g = c.gate("premium").unwrap();
        assert!(g.allows_plan(PayerKind::User, "pro"));
        assert!(!g.allows_plan(PayerKind::Org, "pro"), "o:pro is not u:pro");
        assert!(g.allows_plan(PayerKind::Org, "team"));
        assert!(!g.allows_plan(PayerKind::User, "free_user"));
        assert!(
            !g.allows_plan(PayerKind::User, "enterprise"),
            "unlisted paid plan"
        );
        assert!(g.allows_any_feature(PayerKind::Org, ["reports"].into_iter()));
    }

    #[test]
    fn unscoped_gate_entries_are_rejected() {
        let bad = SAMPLE.replace("\"u:pro\"", "\"pro\"");
        assert!(matches!(
            Catalog::from_toml(&bad),
            Err(PlansError::Invalid(_))
        ));
    }

    #[test]
    fn a_limit_counts_units_of_a_feature_the_plan_has() {
        let text = SAMPLE.replace(
            r#"features = ["reports"]"#,
            "features = [\"reports\", \"exports\"]\nlimits = { reports = 100, exports = 1 }",
        );
        let c = Catalog::from_toml(&text).unwrap();
        let pro = c.plan("pro").unwrap();
        assert_eq!(pro.limit("reports"), Limit::Units(100));
        assert_eq!(
            pro.limit("exports"),
            Limit::Units(1),
            "one is the least limit"
        );
        assert_eq!(pro.limit("support"), Limit::Units(0), "not in the plan");
        let plain = Catalog::from_toml(SAMPLE).unwrap();
        assert_eq!(
            plain.plan("pro").unwrap().limit("reports"),
            Limit::Unlimited
        );
        assert_eq!(c.metered_features(), vec!["exports", "reports"]);
        assert!(plain.metered_features().is_empty());
    }

    #[test]
    fn a_limit_that_is_not_a_whole_count_of_a_plan_feature_stops_the_file() {
        for (limits, says) in [
            ("{ reports = -1 }", "must be a whole number"),
            ("{ reports = 0 }", "from 1 to 1000000000000"),
            ("{ reports = 1000000000001 }", "from 1 to 1000000000000"),
            (
                "{ reports = 9223372036854775807 }",
                "from 1 to 1000000000000",
            ),
            ("{ reports = 10.5 }", "must be a whole number"),
            ("{ reports = \"100\" }", "must be a whole number"),
            ("{ reports = true }", "must be a whole number"),
            ("{ exports = 10 }", "does not have"),
        ] {
            let text = SAMPLE.replace(
                r#"features = ["reports"]"#,
                &format!("features = [\"reports\"]\nlimits = {limits}"),
            );
            let e = Catalog::from_toml(&text).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("plan `pro`"),
                "{limits}: {e}"
            );
        }
        let nested = SAMPLE.replace(
            r#"features = ["reports"]"#,
            "features = [\"reports\"]\nlimits = { reports = { monthly = 5 } }",
        );
        assert!(Catalog::from_toml(&nested).is_err());
    }

    #[test]
    fn the_shipped_plans_file_is_valid() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans.toml")).unwrap();
        let c = Catalog::from_toml(&text).unwrap();
        assert!(c.plans.iter().filter(|p| !p.is_free()).count() >= 2);
        assert!(c.plans.iter().any(|p| p.annual_cents > 0));
        assert!(matches!(
            c.plan("pro").unwrap().limit("premium_api"),
            Limit::Units(n) if n > 0
        ));
    }

    #[test]
    fn feature_slugs_read_as_words() {
        assert_eq!(feature_words("premium_api"), "Premium API");
        assert_eq!(feature_words("priority_support"), "Priority support");
        assert_eq!(feature_words("api-calls"), "API calls");
        assert_eq!(feature_words("_x__y_"), "X y");
        assert_eq!(feature_words(""), "");
        assert_eq!(
            feature_words("élan_vital"),
            "Élan vital",
            "not cut inside a character"
        );
    }
}
