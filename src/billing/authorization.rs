//! Clerk's `has()` on the server: roles, permissions, features, plans and reverification, each
//! asked dimension required (Clerk's rule since April 2026: every dimension asked must pass, and
//! at least one must be asked), anything missing or malformed failing closed. A port of
//! clerk/javascript `packages/shared/src/authorization.ts` and `jwtPayloadParser.ts`, with their
//! test vectors below; the organization permissions are decoded from a v2 token's `o.per` +
//! `o.fpm` exactly as Clerk does (decimal masks of any length, least significant bit first,
//! aligned with the organization-scoped `fea` entries, a malformed mask keeping its place).

/// What a session says for authorization (Clerk's signed-in auth object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthObject {
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    /// `org:<role>` for v2 tokens (`o.rol`, prefixed as Clerk does).
    pub org_role: Option<String>,
    /// `org:<feature>:<permission>`, decoded from `o.per` / `o.fpm`.
    pub org_permissions: Option<Vec<String>>,
    /// Minutes since the first and the second factor were verified (`-1`: not enrolled).
    pub factor_verification_age: Option<[i64; 2]>,
    /// The raw `fea` claim.
    pub features: Option<String>,
    /// The raw `pla` claim.
    pub plans: Option<String>,
}

/// How recent a verification an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    FirstFactor,
    SecondFactor,
    MultiFactor,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "first_factor" => Some(Level::FirstFactor),
            "second_factor" => Some(Level::SecondFactor),
            "multi_factor" => Some(Level::MultiFactor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::FirstFactor => "first_factor",
            Level::SecondFactor => "second_factor",
            Level::MultiFactor => "multi_factor",
        }
    }
}

/// A reverification requirement: a verification of `level` within `after_minutes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reverification {
    pub level: Level,
    pub after_minutes: i64,
}

impl Reverification {
    /// Clerk's presets: `strict_mfa` (multi factor, 10 min), `strict` (second factor, 10),
    /// `moderate` (second factor, 60), `lax` (second factor, a day).
    pub fn preset(name: &str) -> Option<Reverification> {
        let (level, after_minutes) = match name {
            "strict_mfa" => (Level::MultiFactor, 10),
            "strict" => (Level::SecondFactor, 10),
            "moderate" => (Level::SecondFactor, 60),
            "lax" => (Level::SecondFactor, 1_440),
            _ => return None,
        };
        Some(Reverification {
            level,
            after_minutes,
        })
    }

    /// A custom level (`level`, `afterMinutes > 0`), or `None` when it is not one.
    pub fn custom(level: &str, after_minutes: i64) -> Option<Reverification> {
        (after_minutes > 0).then_some(Reverification {
            level: Level::parse(level)?,
            after_minutes,
        })
    }

    /// Clerk's `403` body for a missing reverification, which clerk-js' `useReverification`
    /// reads to prompt: `{"clerk_error":{"type":"forbidden","reason":"reverification-error",
    /// "metadata":{"reverification":{"level":…,"afterMinutes":…}}}}`.
    pub fn error_body(&self) -> serde_json::Value {
        serde_json::json!({
            "clerk_error": {
                "type": "forbidden",
                "reason": "reverification-error",
                "metadata": {
                    "reverification": {
                        "level": self.level.as_str(),
                        "afterMinutes": self.after_minutes,
                    }
                }
            }
        })
    }
}

/// What a `has()` call asks. `reverification: Some(None)` is a requirement that did not parse
/// (fails closed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask<'a> {
    pub role: Option<&'a str>,
    pub permission: Option<&'a str>,
    pub feature: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub reverification: Option<Option<Reverification>>,
}

/// One dimension's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Pass,
    Fail,
    /// Not asked: does not count either way.
    Skip,
}

fn verdict(ok: bool) -> Check {
    if ok {
        Check::Pass
    } else {
        Check::Fail
    }
}

/// `org:` in front of `value`, once, whatever number of `org:` it had.
fn prefix_with_org(value: &str) -> String {
    let mut rest = value;
    while let Some(r) = rest.strip_prefix("org:") {
        rest = r;
    }
    format!("org:{rest}")
}

/// The role and permission dimension.
pub fn check_org(ask: &Ask<'_>, auth: &AuthObject) -> Check {
    if ask.role.is_none() && ask.permission.is_none() {
        return Check::Skip;
    }
    if auth.org_id.as_deref().is_none_or(str::is_empty) {
        return Check::Fail;
    }
    if let Some(role) = ask.role {
        let held = auth.org_role.as_deref().filter(|r| !r.is_empty());
        if held.is_none_or(|held| prefix_with_org(held) != prefix_with_org(role)) {
            return Check::Fail;
        }
    }
    if let Some(permission) = ask.permission {
        let wanted = prefix_with_org(permission);
        if auth
            .org_permissions
            .as_ref()
            .is_none_or(|held| !held.contains(&wanted))
        {
            return Check::Fail;
        }
    }
    Check::Pass
}

/// The `fea` (or `pla`) entries by scope: organization's and user's (`ou`/`uo` count for
/// both; other scopes for neither). An entry without a scope makes the claim unreadable.
pub fn split_by_scope(claim: &str) -> Result<(Vec<&str>, Vec<&str>), String> {
    let (mut org, mut user) = (Vec::new(), Vec::new());
    if claim.is_empty() {
        return Ok((org, user));
    }
    for part in claim.split(',') {
        let part = part.trim();
        let (scope, value) = part
            .split_once(':')
            .ok_or_else(|| format!("Invalid claim element (missing colon): {part}"))?;
        match scope {
            "o" => org.push(value),
            "u" => user.push(value),
            "ou" | "uo" => {
                org.push(value);
                user.push(value);
            }
            _ => {}
        }
    }
    Ok((org, user))
}

/// Whether `claim` holds `asked` (`o:x`, `org:x`, `organization:x`, `u:x`, `user:x`, or `x` in
/// either scope). `None`: unreadable claim or unknown scope.
fn holds(claim: &str, asked: &str) -> Option<bool> {
    let (org, user) = split_by_scope(claim).ok()?;
    let mut parts = asked.split(':');
    let scope = parts.next().unwrap_or_default();
    match parts.next() {
        None => Some(org.contains(&scope) || user.contains(&scope)),
        // Clerk reads `o:` as asking for `o` in the organization's entries.
        Some(id) => match (scope, if id.is_empty() { scope } else { id }) {
            ("o" | "org" | "organization", id) => Some(org.contains(&id)),
            ("u" | "user", id) => Some(user.contains(&id)),
            _ => None,
        },
    }
}

/// The feature and plan dimension.
pub fn check_billing(ask: &Ask<'_>, auth: &AuthObject) -> Check {
    if ask.feature.is_none() && ask.plan.is_none() {
        return Check::Skip;
    }
    let passes = |claim: Option<&str>, asked: Option<&str>| match asked {
        None => true,
        Some(asked) => claim
            .filter(|c| !c.is_empty())
            .and_then(|c| holds(c, asked))
            .unwrap_or(false),
    };
    verdict(
        passes(auth.features.as_deref(), ask.feature) && passes(auth.plans.as_deref(), ask.plan),
    )
}

/// The reverification dimension: second factor preferred, falling back to the factor that is
/// enrolled (Clerk's graceful downgrade); neither enrolled fails.
pub fn check_reverification(ask: &Ask<'_>, auth: &AuthObject) -> Check {
    let Some(asked) = ask.reverification else {
        return Check::Skip;
    };
    let Some([first, second]) = auth.factor_verification_age else {
        return Check::Fail;
    };
    let valid_age = |x: i64| x == -1 || x >= 0;
    if !valid_age(first) || !valid_age(second) {
        return Check::Fail;
    }
    // A requirement that did not parse fails; so does one of no minutes (nothing is fresher than
    // zero) and a session with neither factor enrolled (no age is fresh).
    let Some(Reverification {
        level,
        after_minutes,
    }) = asked
    else {
        return Check::Fail;
    };
    let fresh = |age: i64| age != -1 && after_minutes > age;
    verdict(match level {
        Level::FirstFactor => fresh(first),
        Level::SecondFactor if second == -1 => fresh(first),
        Level::SecondFactor => fresh(second),
        Level::MultiFactor if second == -1 => fresh(first),
        Level::MultiFactor => fresh(first) && fresh(second),
    })
}

/// At least one dimension asked, and every asked one passed.
pub fn combine(results: &[Check]) -> bool {
    results.contains(&Check::Pass) && !results.contains(&Check::Fail)
}

/// Clerk's `has()`: `false` without a user, else every asked dimension must pass.
pub fn has(auth: &AuthObject, ask: &Ask<'_>) -> bool {
    if auth.user_id.as_deref().is_none_or(str::is_empty) {
        return false;
    }
    combine(&[
        check_org(ask, auth),
        check_billing(ask, auth),
        check_reverification(ask, auth),
    ])
}

/// A decimal mask (any length) as its bits, least significant first, at least `min_len` of
/// them; `None` when it is not a run of digits.
pub fn decimal_to_bits(decimal: &str, min_len: usize) -> Option<Vec<bool>> {
    if decimal.is_empty() || !decimal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: Vec<u8> = decimal
        .bytes()
        .map(|b| b - b'0')
        .skip_while(|d| *d == 0)
        .collect();
    let mut bits = Vec::new();
    while !digits.is_empty() {
        let mut remainder = 0;
        let mut quotient = Vec::with_capacity(digits.len());
        for d in &digits {
            let value = remainder * 10 + d;
            if !quotient.is_empty() || value / 2 != 0 {
                quotient.push(value / 2);
            }
            remainder = value % 2;
        }
        bits.push(remainder == 1);
        digits = quotient;
    }
    let len = bits.len().max(min_len).max(1);
    bits.resize(len, false);
    Some(bits)
}

/// The organization permissions a v2 token packs: `o.per` names them, `o.fpm` holds one mask
/// per organization-scoped `fea` entry, in order. Missing `per` or `fpm`: none.
pub fn org_permissions(fea: Option<&str>, per: Option<&str>, fpm: Option<&str>) -> Vec<String> {
    let (Some(per), Some(fpm)) = (per.filter(|p| !p.is_empty()), fpm.filter(|f| !f.is_empty()))
    else {
        return Vec::new();
    };
    let Ok((org_features, _)) = split_by_scope(fea.unwrap_or_default()) else {
        return Vec::new();
    };
    let permissions: Vec<&str> = per.split(',').map(str::trim).collect();
    let masks: Vec<Vec<bool>> = fpm
        .split(',')
        .map(|m| decimal_to_bits(m.trim(), permissions.len()).unwrap_or_default())
        .collect();
    let mut out = Vec::new();
    for (feature, bits) in org_features.iter().zip(&masks) {
        for (permission, bit) in permissions.iter().zip(bits) {
            if *bit {
                out.push(format!("org:{feature}:{permission}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(
        org: Option<&str>,
        role: Option<&str>,
        permissions: Option<&[&str]>,
        features: &str,
        plans: &str,
        fva: Option<[i64; 2]>,
    ) -> AuthObject {
        AuthObject {
            user_id: Some("user_123".into()),
            org_id: org.map(str::to_string),
            org_role: role.map(str::to_string),
            org_permissions: permissions.map(|p| p.iter().map(|s| s.to_string()).collect()),
            factor_verification_age: fva,
            features: Some(features.into()),
            plans: Some(plans.into()),
        }
    }

    fn org_admin(permissions: &[&str], features: &str, plans: &str) -> AuthObject {
        auth(
            Some("org_123"),
            Some("org:admin"),
            Some(permissions),
            features,
            plans,
            Some([0, 0]),
        )
    }

    fn preset(name: &str) -> Option<Option<Reverification>> {
        Some(Reverification::preset(name))
    }

    // authorization.spec.ts

    #[test]
    fn correctly_parses_features() {
        let a = auth(
            Some("org_123"),
            Some("admin"),
            Some(&["org:read"]),
            "o:reservations,u:dashboard",
            "free_user,plus_user",
            Some([1000, 2000]),
        );
        let f = |feature| Ask {
            feature: Some(feature),
            ..Ask::default()
        };
        for ok in [
            "o:reservations",
            "org:reservations",
            "organization:reservations",
            "reservations",
            "u:dashboard",
            "user:dashboard",
            "dashboard",
        ] {
            assert!(has(&a, &f(ok)), "{ok}");
        }
        assert!(!has(&a, &f("lol:dashboard")));
    }

    #[test]
    fn fails_closed_on_missing_or_malformed_claims() {
        // A role claim that is not a role (Clerk: `123 as any`): none.
        let mut a = org_admin(&["org:sys_profile:delete"], "", "");
        a.org_role = None;
        let role = Ask {
            role: Some("org:admin"),
            ..Ask::default()
        };
        assert!(!has(&a, &role));
        a.org_role = Some(String::new());
        assert!(!has(&a, &role));
        // Permissions that are not a list.
        let mut a = org_admin(&[], "", "");
        a.org_permissions = None;
        let permission = Ask {
            permission: Some("org:sys_profile:delete"),
            ..Ask::default()
        };
        assert!(!has(&a, &permission));
        // Features and plans claims that are not strings.
        let mut a = org_admin(&["org:read"], "", "");
        a.features = None;
        a.plans = None;
        for ask in [
            Ask {
                feature: Some("org:premium"),
                ..Ask::default()
            },
            Ask {
                plan: Some("u:plus"),
                ..Ask::default()
            },
        ] {
            assert!(!has(&a, &ask));
        }
    }

    #[test]
    fn fails_when_no_dimension_was_requested() {
        let a = org_admin(&["org:sys_profile:delete"], "o:premium", "plus");
        assert!(!has(&a, &Ask::default()));
    }

    #[test]
    fn org_dimensions_fail_without_an_organization_whatever_the_reverification() {
        let a = auth(None, None, None, "", "", Some([0, 0]));
        for ask in [
            Ask {
                permission: Some("org:sys_profile:delete"),
                reverification: preset("strict"),
                ..Ask::default()
            },
            Ask {
                role: Some("org:admin"),
                reverification: preset("strict"),
                ..Ask::default()
            },
        ] {
            assert!(!has(&a, &ask));
        }
    }

    #[test]
    fn reverification_fails_without_fva_with_a_malformed_one_or_an_invalid_config() {
        let mut a = org_admin(&["org:sys_profile:delete"], "", "");
        a.factor_verification_age = None;
        let ask = Ask {
            permission: Some("org:sys_profile:delete"),
            reverification: preset("strict"),
            ..Ask::default()
        };
        assert!(!has(&a, &ask));
        // `['0', '0']` does not parse as ages: what the token parser hands over is none.
        let a = auth(None, None, None, "", "", None);
        let strict_mfa = Ask {
            reverification: preset("strict_mfa"),
            ..Ask::default()
        };
        assert!(!has(&a, &strict_mfa));
        let a = org_admin(&["org:sys_profile:delete"], "", "");
        let invalid = Ask {
            permission: Some("org:sys_profile:delete"),
            reverification: preset("invalid-value"),
            ..Ask::default()
        };
        assert!(!has(&a, &invalid));
        assert_eq!(Reverification::preset("invalid-value"), None);
    }

    #[test]
    fn every_asked_dimension_must_pass() {
        let a = org_admin(&["org:sys_memberships:read"], "o:reservations", "");
        let ask = |permission, feature| Ask {
            permission: Some(permission),
            feature: Some(feature),
            ..Ask::default()
        };
        assert!(!has(&a, &ask("org:sys_profile:delete", "org:reservations")));
        assert!(has(
            &a,
            &ask("org:sys_memberships:read", "org:reservations")
        ));
        let both = |role, permission| Ask {
            role: Some(role),
            permission: Some(permission),
            ..Ask::default()
        };
        let a = org_admin(&["org:sys_memberships:read"], "", "");
        assert!(!has(&a, &both("org:admin", "org:sys_profile:delete")));
        assert!(has(&a, &both("org:admin", "org:sys_memberships:read")));
        assert!(!has(&a, &both("org:member", "org:sys_memberships:read")));
        let a = org_admin(&["org:read"], "o:reservations", "u:plus");
        let billing = |feature, plan| Ask {
            feature: Some(feature),
            plan: Some(plan),
            ..Ask::default()
        };
        assert!(has(&a, &billing("org:reservations", "u:plus")));
        assert!(!has(&a, &billing("org:reservations", "u:free")));
        assert!(!has(&a, &billing("org:missing", "u:plus")));
    }

    #[test]
    fn fails_feature_check_when_features_claim_is_missing_or_empty() {
        let a = org_admin(&["org:read"], "", "");
        let ask = Ask {
            feature: Some("org:premium"),
            ..Ask::default()
        };
        assert!(!has(&a, &ask));
        let ask = Ask {
            feature: Some("org:premium"),
            reverification: preset("strict"),
            ..Ask::default()
        };
        assert!(!has(&a, &ask), "a passing reverification carries nothing");
    }

    #[test]
    fn fails_when_factor_ages_are_negative_non_sentinel_values() {
        let a = auth(None, None, None, "", "", Some([-2, 0]));
        let ask = Ask {
            reverification: preset("strict"),
            ..Ask::default()
        };
        assert!(!has(&a, &ask));
        let a = auth(None, None, None, "", "", Some([0, -3]));
        assert!(!has(&a, &ask));
    }

    #[test]
    fn fails_reverification_when_config_is_out_of_range() {
        let a = org_admin(&["org:sys_profile:delete"], "", "");
        for minutes in [0, -1] {
            assert_eq!(Reverification::custom("multi_factor", minutes), None);
            let ask = Ask {
                reverification: Some(Some(Reverification {
                    level: Level::MultiFactor,
                    after_minutes: minutes,
                })),
                ..Ask::default()
            };
            assert!(!has(&a, &ask));
        }
        assert_eq!(Reverification::custom("third_factor", 5), None);
        assert_eq!(
            Reverification::custom("multi_factor", 5),
            Some(Reverification {
                level: Level::MultiFactor,
                after_minutes: 5
            })
        );
    }

    #[test]
    fn cross_dimension_combinations() {
        let a = org_admin(&["org:sys_memberships:read"], "o:reservations", "u:plus");
        let ask = |feature: Option<&'static str>, plan: Option<&'static str>| Ask {
            role: Some("org:admin"),
            feature,
            plan,
            ..Ask::default()
        };
        assert!(!has(&a, &ask(Some("org:missing"), None)));
        assert!(!has(&a, &ask(None, Some("u:free"))));
        assert!(has(&a, &ask(Some("org:reservations"), None)));
        let all = Ask {
            permission: Some("org:sys_memberships:read"),
            feature: Some("org:reservations"),
            reverification: preset("strict"),
            ..Ask::default()
        };
        assert!(has(&a, &all));
        let pr = Ask {
            permission: Some("org:sys_memberships:read"),
            reverification: preset("strict"),
            ..Ask::default()
        };
        assert!(has(&org_admin(&["org:sys_memberships:read"], "", ""), &pr));
    }

    #[test]
    fn strict_mfa_downgrades_to_the_first_factor_and_no_factor_fails() {
        let mut a = org_admin(&["org:sys_memberships:read"], "", "");
        a.factor_verification_age = Some([0, -1]);
        let ask = Ask {
            permission: Some("org:sys_memberships:read"),
            reverification: preset("strict_mfa"),
            ..Ask::default()
        };
        assert!(has(&a, &ask));
        a.factor_verification_age = Some([-1, -1]);
        let strict = Ask {
            reverification: preset("strict"),
            ..ask
        };
        assert!(!has(&a, &strict));
    }

    #[test]
    fn no_user_no_authorization() {
        let mut a = org_admin(&["org:read"], "o:x", "u:plus");
        a.user_id = None;
        let ask = Ask {
            plan: Some("u:plus"),
            ..Ask::default()
        };
        assert!(!has(&a, &ask));
        a.user_id = Some(String::new());
        assert!(!has(&a, &ask));
    }

    #[test]
    fn split_by_scope_as_clerk_does() {
        assert_eq!(split_by_scope(""), Ok((vec![], vec![])));
        assert_eq!(
            split_by_scope("o:impersonation,o:payments"),
            Ok((vec!["impersonation", "payments"], vec![]))
        );
        assert_eq!(
            split_by_scope("u:impersonation,u:payments"),
            Ok((vec![], vec!["impersonation", "payments"]))
        );
        assert_eq!(
            split_by_scope("o:payments,u:impersonation"),
            Ok((vec!["payments"], vec!["impersonation"]))
        );
        assert_eq!(
            split_by_scope("o:reservations,u:dashboard,ou:support-chat,uo:billing"),
            Ok((
                vec!["reservations", "support-chat", "billing"],
                vec!["dashboard", "support-chat", "billing"]
            ))
        );
        assert_eq!(
            split_by_scope("reservations,dashboard"),
            Err("Invalid claim element (missing colon): reservations".into())
        );
        assert_eq!(split_by_scope("x:a,o:b"), Ok((vec!["b"], vec![])));
    }

    // jwtPayloadParser.spec.ts

    #[test]
    fn org_permissions_are_decoded_from_per_and_fpm() {
        let p = |fea: &str, per: &str, fpm: &str| {
            let mut v = org_permissions(Some(fea), Some(per), Some(fpm));
            v.sort();
            v
        };
        let sorted = |v: &[&str]| {
            let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(
            p("o:impersonation", "read,manage", "3"),
            sorted(&["org:impersonation:read", "org:impersonation:manage"])
        );
        assert_eq!(
            p("o:impersonation,o:memberships", "read,manage", "1,3"),
            sorted(&[
                "org:impersonation:read",
                "org:memberships:read",
                "org:memberships:manage"
            ])
        );
        assert_eq!(
            p(
                "o:impersonation,o:memberships,o:feature3",
                "read,manage",
                "1,3,0"
            ),
            sorted(&[
                "org:impersonation:read",
                "org:memberships:read",
                "org:memberships:manage"
            ])
        );
        assert_eq!(
            p(
                "uo:impersonation,o:memberships,uo:feature3",
                "read,manage",
                "1,3,1"
            ),
            sorted(&[
                "org:impersonation:read",
                "org:memberships:read",
                "org:memberships:manage",
                "org:feature3:read"
            ])
        );
        assert_eq!(
            p("ou:memberships,u:impersonation", "read,manage", "3,0"),
            sorted(&["org:memberships:read", "org:memberships:manage"])
        );
        assert_eq!(
            p(
                "o:billing,o:email,o:fraud,o:instance,o:staging_plans",
                "manage,read",
                "3,3,3,3,1"
            ),
            sorted(&[
                "org:billing:manage",
                "org:billing:read",
                "org:email:manage",
                "org:email:read",
                "org:fraud:manage",
                "org:fraud:read",
                "org:instance:manage",
                "org:instance:read",
                "org:staging_plans:manage",
            ])
        );
        assert_eq!(
            p(
                "o:repositories,o:projects",
                "read,create,update,delete,revoke",
                "7,21"
            ),
            sorted(&[
                "org:repositories:read",
                "org:repositories:create",
                "org:repositories:update",
                "org:projects:read",
                "org:projects:update",
                "org:projects:revoke",
            ])
        );
        assert_eq!(
            p(
                "o:repositories,o:projects,o:webhooks,o:impersonation",
                "read,manage",
                "1,2,3,0"
            ),
            sorted(&[
                "org:repositories:read",
                "org:projects:manage",
                "org:webhooks:read",
                "org:webhooks:manage"
            ])
        );
        assert_eq!(
            p(
                "o:repositories,uo:projects,u:goldprofileborder",
                "read,create,update,delete,revoke",
                "7,21,0"
            ),
            sorted(&[
                "org:repositories:read",
                "org:repositories:create",
                "org:repositories:update",
                "org:projects:read",
                "org:projects:update",
                "org:projects:revoke",
            ])
        );
        // Without `per` and `fpm`, none.
        assert!(org_permissions(Some("u:a,u:b"), None, None).is_empty());
        assert!(org_permissions(Some("o:a"), Some("read"), None).is_empty());
        assert!(org_permissions(Some("o:a"), None, Some("1")).is_empty());
        assert!(org_permissions(Some("o:a"), Some(""), Some("1")).is_empty());
    }

    fn permission_names() -> String {
        (0..54)
            .map(|i| format!("permission_{i}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn from_mask(fpm: &str) -> (Vec<String>, AuthObject) {
        let permissions = org_permissions(Some("o:feature"), Some(&permission_names()), Some(fpm));
        let a = AuthObject {
            user_id: Some("sub".into()),
            org_id: Some("org_id".into()),
            org_role: Some("org:admin".into()),
            org_permissions: Some(permissions.clone()),
            ..AuthObject::default()
        };
        (permissions, a)
    }

    fn may(a: &AuthObject, permission: &str) -> bool {
        has(
            a,
            &Ask {
                permission: Some(permission),
                ..Ask::default()
            },
        )
    }

    #[test]
    fn masks_beyond_64_bits_keep_every_bit_and_add_none() {
        let (p, a) = from_mask("9007199254740993");
        assert_eq!(p, ["org:feature:permission_0", "org:feature:permission_53"]);
        assert!(may(&a, "org:feature:permission_0") && may(&a, "org:feature:permission_53"));
        let (p, a) = from_mask("9007199254740995");
        assert_eq!(
            p,
            [
                "org:feature:permission_0",
                "org:feature:permission_1",
                "org:feature:permission_53"
            ]
        );
        assert!(!may(&a, "org:feature:permission_2"));
        // A bit past the declared permissions is dropped.
        let (p, a) = from_mask("18014398509481984");
        assert!(p.is_empty());
        assert!(!may(&a, "org:feature:undefined"));
        // Far past 64 bits: 2^100 + 1.
        let (p, _) = from_mask("1267650600228229401496703205377");
        assert_eq!(p, ["org:feature:permission_0"]);
    }

    #[test]
    fn a_feature_without_permissions_keeps_the_masks_aligned() {
        let p = org_permissions(
            Some("o:repositories,o:impersonation,o:billing"),
            Some("manage,read,update"),
            Some("6,0,3"),
        );
        assert_eq!(
            p,
            [
                "org:repositories:read",
                "org:repositories:update",
                "org:billing:manage",
                "org:billing:read"
            ]
        );
        let a = AuthObject {
            user_id: Some("sub".into()),
            org_id: Some("org_id".into()),
            org_permissions: Some(p),
            ..AuthObject::default()
        };
        assert!(!may(&a, "org:impersonation:manage"));
        assert!(may(&a, "org:billing:manage"));
        // A malformed mask keeps its place.
        let p = org_permissions(
            Some("o:repositories,o:impersonation,o:billing"),
            Some("manage,read,update"),
            Some("6,x,3"),
        );
        assert!(p.contains(&"org:billing:manage".to_string()));
    }

    #[test]
    fn safe_masks_decode_and_malformed_ones_fail_closed() {
        for (fpm, indexes) in [
            ("1", vec![0]),
            ("3", vec![0, 1]),
            ("7", vec![0, 1, 2]),
            ("21", vec![0, 2, 4]),
        ] {
            let (p, a) = from_mask(fpm);
            let expected: Vec<String> = indexes
                .iter()
                .map(|i| format!("org:feature:permission_{i}"))
                .collect();
            assert_eq!(p, expected, "{fpm}");
            for e in &expected {
                assert!(may(&a, e));
            }
        }
        for fpm in ["1invalid", "-1", "1.5", "", " "] {
            let (p, a) = from_mask(fpm);
            assert!(p.is_empty(), "{fpm:?}");
            assert!(!may(&a, "org:feature:permission_0"));
        }
    }

    #[test]
    fn bits_are_least_significant_first_and_padded() {
        assert_eq!(decimal_to_bits("0", 0), Some(vec![false]));
        assert_eq!(decimal_to_bits("000", 3), Some(vec![false; 3]));
        assert_eq!(
            decimal_to_bits("6", 4),
            Some(vec![false, true, true, false])
        );
        assert_eq!(
            decimal_to_bits("10", 0),
            Some(vec![false, true, false, true])
        );
        assert_eq!(decimal_to_bits("a", 1), None);
        assert_eq!(decimal_to_bits("", 1), None);
    }

    #[test]
    fn a_role_matches_with_or_without_its_org_prefix() {
        let mut a = org_admin(&[], "", "");
        for (held, asked) in [
            ("org:admin", "admin"),
            ("admin", "org:admin"),
            ("org:org:admin", "admin"),
        ] {
            a.org_role = Some(held.into());
            let ask = Ask {
                role: Some(asked),
                ..Ask::default()
            };
            assert!(has(&a, &ask), "{held} / {asked}");
        }
        let ask = Ask {
            role: Some("org:member"),
            ..Ask::default()
        };
        assert!(!has(&a, &ask));
        assert_eq!(prefix_with_org("org:org:x"), "org:x");
    }

    #[test]
    fn each_preset_is_clerks() {
        let p = |n| Reverification::preset(n).map(|r| (r.level, r.after_minutes));
        assert_eq!(p("strict_mfa"), Some((Level::MultiFactor, 10)));
        assert_eq!(p("strict"), Some((Level::SecondFactor, 10)));
        assert_eq!(p("moderate"), Some((Level::SecondFactor, 60)));
        assert_eq!(p("lax"), Some((Level::SecondFactor, 1_440)));
        assert_eq!(p("Strict"), None);
        assert_eq!(
            Reverification::preset("strict").unwrap().error_body(),
            serde_json::json!({"clerk_error": {"type": "forbidden", "reason": "reverification-error",
                "metadata": {"reverification": {"level": "second_factor", "afterMinutes": 10}}}})
        );
        for l in ["first_factor", "second_factor", "multi_factor"] {
            assert_eq!(Level::parse(l).map(Level::as_str), Some(l));
        }
    }

    #[test]
    fn each_level_reads_the_factors_as_clerk_does() {
        let ok = |level, fva: [i64; 2]| {
            let a = auth(None, None, None, "", "", Some(fva));
            has(
                &a,
                &Ask {
                    reverification: Some(Some(Reverification {
                        level,
                        after_minutes: 10,
                    })),
                    ..Ask::default()
                },
            )
        };
        use Level::*;
        // First factor: only its own age.
        assert!(ok(FirstFactor, [9, 100]));
        assert!(!ok(FirstFactor, [10, 0]));
        assert!(!ok(FirstFactor, [-1, 0]));
        // Second factor: its own age when enrolled, else the first's.
        assert!(ok(SecondFactor, [100, 9]));
        assert!(!ok(SecondFactor, [0, 10]));
        assert!(ok(SecondFactor, [9, -1]));
        assert!(!ok(SecondFactor, [10, -1]));
        assert!(ok(SecondFactor, [-1, 9]));
        // Multi factor: both, or the first alone when no second is enrolled.
        assert!(ok(MultiFactor, [9, 9]));
        assert!(!ok(MultiFactor, [10, 9]));
        assert!(!ok(MultiFactor, [9, 10]));
        assert!(ok(MultiFactor, [9, -1]));
        assert!(!ok(MultiFactor, [-1, 0]));
    }

    proptest::proptest! {
        /// A mask's bits are the number's binary digits, least significant first, padded to the
        /// permission list (checked against `u128` arithmetic), with any leading zeros.
        #[test]
        fn a_decimal_mask_reads_as_its_binary_digits(n in proptest::num::u128::ANY, zeros in 0usize..3, min in 0usize..140) {
            let text = format!("{}{n}", "0".repeat(zeros));
            let bits = decimal_to_bits(&text, min).unwrap();
            let width = (128 - n.leading_zeros() as usize).max(1);
            proptest::prop_assert_eq!(bits.len(), width.max(min));
            for (i, bit) in bits.iter().enumerate() {
                proptest::prop_assert_eq!(*bit, i < 128 && (n >> i) & 1 == 1, "bit {}", i);
            }
        }

        /// Anything but a run of digits grants nothing, and never more permissions than
        /// `per` names for the features `fea` scopes to the organization.
        #[test]
        fn a_mask_never_grants_more_than_per_names(masks in proptest::collection::vec("[0-9a-z.-]{0,25}", 0..5), per in 0usize..6) {
            let names: Vec<String> = (0..per).map(|i| format!("p{i}")).collect();
            let fea = (0..masks.len()).map(|i| format!("o:f{i}")).collect::<Vec<_>>().join(",");
            let granted = org_permissions(Some(&fea), Some(names.join(",").as_str()).filter(|s| !s.is_empty()), Some(masks.join(",").as_str()).filter(|s| !s.is_empty()));
            for g in &granted {
                let mut parts = g.splitn(3, ':');
                proptest::prop_assert_eq!(parts.next(), Some("org"));
                let feature = parts.next().unwrap();
                let i: usize = feature.trim_start_matches('f').parse().unwrap();
                proptest::prop_assert!(masks[i].bytes().all(|b| b.is_ascii_digit()), "{} from {:?}", g, masks[i]);
                let permission = parts.next();
                proptest::prop_assert!(names.iter().any(|n| Some(n.as_str()) == permission));
            }
            proptest::prop_assert!(granted.len() <= masks.len() * per);
        }
    }

    #[test]
    fn the_combiner_wants_one_pass_and_no_fail() {
        use Check::*;
        assert!(combine(&[Pass, Skip, Skip]));
        assert!(combine(&[Pass, Pass, Pass]));
        assert!(!combine(&[Skip, Skip, Skip]));
        assert!(!combine(&[Pass, Fail, Skip]));
        assert!(!combine(&[Fail, Skip, Pass]));
    }
}
