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
}

impl Session {
    pub fn from_claims(c: Claims, session_id: String) -> Session {
        let v2 = c.v.unwrap_or(1) >= 2;
        let (org_id, org_slug, org_role) = match (&c.o, v2) {
            (Some(o), true) => (Some(o.id.clone()), o.slg.clone(), o.rol.clone()),
            _ => (c.org_id.clone(), None, None),
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
        }
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
        }
    }
}
