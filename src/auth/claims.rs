//! Clerk session token claims (v1 and v2) and the verified session they become.

use serde::Deserialize;

use crate::billing::TokenPlan;

#[derive(Debug, Clone, Deserialize)]
pub struct OrgClaim {
    pub id: String,
    #[serde(default)]
    pub slg: Option<String>,
    #[serde(default)]
    pub rol: Option<String>,
    /// The permission names `fpm`'s bits refer to (comma list).
    #[serde(default)]
    pub per: Option<String>,
    /// One decimal permission mask per organization-scoped `fea` entry (comma list).
    #[serde(default)]
    pub fpm: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub sts: Option<String>,
    #[serde(default)]
    pub v: Option<i64>,
    #[serde(default)]
    pub pla: Option<String>,
    #[serde(default)]
    pub fea: Option<String>,
    #[serde(default)]
    pub o: Option<OrgClaim>,
    /// v1 tokens name the active organization flat.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Factor verification ages in minutes, `[first, second]` (`-1`: never). Read leniently:
    /// a malformed value means "unknown", never a rejected session.
    #[serde(default)]
    pub fva: Option<serde_json::Value>,
}

/// A verified session: who, in which organization, and what plan the token claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub session_id: String,
    pub org_id: Option<String>,
    pub org_slug: Option<String>,
    pub org_role: Option<String>,
    /// From `pla`; `None` for v1 tokens, which verify but carry no plan.
    pub token_plan: Option<TokenPlan>,
    /// Raw `fea` entries.
    pub features: Vec<String>,
    pub iat_ms: i64,
    /// Minutes since the first and the second factor were verified (`fva`; `-1`: not
    /// enrolled), when the token carries exactly two whole numbers; `None` otherwise.
    pub fva: Option<[i32; 2]>,
    /// `org:<feature>:<permission>`, decoded from `o.per` / `o.fpm` (v2 tokens).
    pub org_permissions: Vec<String>,
}

impl Session {
    pub fn from_claims(c: Claims, session_id: String) -> Session {
        let v2 = c.v.unwrap_or(1) >= 2;
        let (org_id, org_slug, org_role) = match (&c.o, v2) {
            (Some(o), true) => (Some(o.id.clone()), o.slg.clone(), o.rol.clone()),
            _ => (c.org_id.clone(), None, None),
        };
        let org_permissions = match (&c.o, v2) {
            (Some(o), true) => crate::billing::authorization::org_permissions(
                c.fea.as_deref(),
                o.per.as_deref(),
                o.fpm.as_deref(),
            ),
            _ => Vec::new(),
        };
        Session {
            user_id: c.sub,
            session_id,
            org_id,
            org_slug,
            org_role,
            token_plan: if v2 {
                c.pla.as_deref().and_then(TokenPlan::parse)
            } else {
                None
            },
            features: if v2 {
                c.fea
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            },
            iat_ms: c.iat.saturating_mul(1000),
            fva: c.fva.as_ref().and_then(parse_fva),
            org_permissions,
        }
    }
}

impl Session {
    /// The account this session calls as: its user, the active organization, and what the
    /// token says of the plan. The one place a session becomes a caller the services know.
    pub fn account(&self) -> crate::billing::Account {
        self.clone().into_account()
    }

    /// [`Self::account`], taking the session's strings rather than copying them (a handler's
    /// extractor owns the request's caller).
    pub fn into_account(self) -> crate::billing::Account {
        use crate::billing::{Account, Payer, TokenEvidence};
        Account {
            caller: Payer::user(self.user_id),
            org: self.org_id.map(Payer::org),
            token: Some(TokenEvidence {
                plan: self.token_plan,
                features: self.features,
                iat_ms: self.iat_ms,
                org_role: self.org_role,
                org_permissions: self.org_permissions,
                fva: self.fva.map(|[a, b]| [i64::from(a), i64::from(b)]),
            }),
        }
    }
}

/// `fva` as Clerk writes it: an array of exactly two whole numbers, `[first, second]` (minutes:
/// anything past `i32` is no age, and reads as unknown).
fn parse_fva(v: &serde_json::Value) -> Option<[i32; 2]> {
    let minutes = |m: &serde_json::Value| m.as_i64().and_then(|m| i32::try_from(m).ok());
    match v.as_array()?.as_slice() {
        [a, b] => Some([minutes(a)?, minutes(b)?]),
        _ => None,
    }
}

#[cfg(test)]
impl Session {
    /// A verified session of `user_id` with no plan, organization or features (unit tests).
    pub fn example(user_id: &str) -> Session {
        Session {
            user_id: user_id.into(),
            session_id: format!("sess_{user_id}"),
            org_id: None,
            org_slug: None,
            org_role: None,
            token_plan: None,
            features: vec![],
            iat_ms: 5_000,
            fva: None,
            org_permissions: vec![],
        }
    }
}

#[cfg(test)]
mod fva_tests {
    use super::*;

    fn session(fva: serde_json::Value) -> Session {
        let mut c = serde_json::json!({"sub": "user_1", "iat": 1, "exp": 2, "v": 2});
        if !fva.is_null() {
            c["fva"] = fva;
        }
        Session::from_claims(serde_json::from_value(c).unwrap(), "sess_1".into())
    }

    #[test]
    fn fva_is_two_whole_numbers_and_anything_odd_is_unknown() {
        use serde_json::json;
        assert_eq!(session(json!([3, -1])).fva, Some([3, -1]));
        assert_eq!(session(json!([0, 5])).fva, Some([0, 5]));
        assert_eq!(session(json!([-1, -1])).fva, Some([-1, -1]));
        for odd in [
            json!(null),
            json!([]),
            json!([3]),
            json!([3, -1, 2]),
            json!("3"),
            json!(["3", -1]),
            json!([3, "-1"]),
            json!([3.5, -1]),
            json!([3_000_000_000i64, -1]),
            json!({"0": 3}),
            json!(3),
        ] {
            assert_eq!(session(odd.clone()).fva, None, "{odd}");
        }
    }
}

#[cfg(test)]
mod authorization_tests {
    use super::*;

    fn session(c: serde_json::Value) -> Session {
        Session::from_claims(serde_json::from_value(c).unwrap(), "sess_1".into())
    }

    #[test]
    fn a_v2_token_says_its_role_permissions_ages_features_and_plan_as_clerk_reads_them() {
        let s = session(serde_json::json!({
            "sub": "user_1", "iat": 1, "exp": 2, "v": 2,
            "fea": "o:repositories,o:impersonation,o:billing,u:x",
            "pla": "o:team",
            "fva": [3, -1],
            "o": {"id": "org_1", "rol": "admin", "per": "manage,read,update", "fpm": "6,0,3"},
        }));
        let a = s.account().auth_object().unwrap();
        assert_eq!(a.user_id.as_deref(), Some("user_1"));
        assert_eq!(a.org_id.as_deref(), Some("org_1"));
        assert_eq!(a.org_role.as_deref(), Some("org:admin"));
        assert_eq!(
            a.org_permissions.unwrap(),
            [
                "org:repositories:read",
                "org:repositories:update",
                "org:billing:manage",
                "org:billing:read"
            ]
        );
        assert_eq!(a.factor_verification_age, Some([3, -1]));
        assert_eq!(
            a.features.as_deref(),
            Some("o:repositories,o:impersonation,o:billing,u:x")
        );
        assert_eq!(a.plans.as_deref(), Some("o:team"));
    }

    #[test]
    fn without_an_organization_or_in_a_v1_token_no_permission_is_read() {
        let no_org = session(serde_json::json!({
            "sub": "user_1", "iat": 1, "exp": 2, "v": 2, "fea": "o:a", "fva": "soon",
        }));
        let a = no_org.account().auth_object().unwrap();
        assert_eq!(
            (a.org_id, a.org_role, a.org_permissions),
            (None, None, None)
        );
        assert_eq!(a.factor_verification_age, None);
        let v1 = session(serde_json::json!({
            "sub": "user_1", "iat": 1, "exp": 2, "org_id": "org_1",
            "o": {"id": "org_1", "rol": "admin", "per": "read", "fpm": "1"}, "fea": "o:a",
        }));
        assert_eq!(
            v1.account().auth_object().unwrap().org_permissions,
            Some(vec![])
        );
    }
}
