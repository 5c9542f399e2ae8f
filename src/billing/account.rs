//! The caller as every service takes them: an [`Account`] (who calls and the payers they
//! answer for) and, once a gate is asked, an [`Access`] (the decision and who pays for what it
//! opened). Built once per request at the edge (`auth::Session::account`, from a session
//! token; an API key's owner next), so no handler or page picks a payer itself.

use super::{
    authorization::AuthObject, Decision, Evidence, ItemState, Payer, PayerKind, TokenPlan,
};

/// What a session token says about the caller's plan (an API key says nothing: its plan is
/// the owner's stored one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEvidence {
    /// From `pla`; `None` for v1 tokens.
    pub plan: Option<TokenPlan>,
    /// Raw `fea` entries.
    pub features: Vec<String>,
    /// The token's `iat`, in ms.
    pub iat_ms: i64,
    /// The role in the active organization (`o.rol`, without `org:`).
    pub org_role: Option<String>,
    /// `org:<feature>:<permission>`, decoded from `o.per` / `o.fpm`.
    pub org_permissions: Vec<String>,
    /// Minutes since the first and the second factor were verified (`fva`).
    pub fva: Option<[i64; 2]>,
}

/// Who is calling and the payers they answer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Who calls: the signed-in user (or, next, an API key's owner, a user or an organization).
    pub caller: Payer,
    /// The organization the caller acts for: a session's active organization.
    pub org: Option<Payer>,
    pub token: Option<TokenEvidence>,
}

impl Account {
    /// The user among the payers, if a user calls.
    pub fn user(&self) -> Option<&Payer> {
        (self.caller.kind == PayerKind::User).then_some(&self.caller)
    }

    /// The organization among the payers: the active one, or the organization calling.
    pub fn organization(&self) -> Option<&Payer> {
        self.org
            .as_ref()
            .or((self.caller.kind == PayerKind::Org).then_some(&self.caller))
    }

    /// Every payer this caller answers for: the user (or organization) calling, then the
    /// active organization.
    pub fn payers(&self) -> Vec<&Payer> {
        std::iter::once(&self.caller)
            .chain(self.org.as_ref())
            .collect()
    }

    /// Who pays for what a decision of `scope` opened: the active organization for an
    /// organization's plan, else the caller.
    pub fn pays(&self, scope: Option<PayerKind>) -> &Payer {
        match (scope, &self.org) {
            (Some(PayerKind::Org), Some(org)) => org,
            _ => &self.caller,
        }
    }

    /// What the caller's session says to Clerk's `has()` (its auth object): the user, the active
    /// organization, its role (`org:` + `o.rol`) and permissions, the factor ages, and `fea` /
    /// `pla` as written. `None` for a caller without a session token (an API key).
    pub fn auth_object(&self) -> Option<AuthObject> {
        let token = self.token.as_ref()?;
        Some(AuthObject {
            user_id: self.user().map(|u| u.id.clone()),
            org_id: self.org.as_ref().map(|o| o.id.clone()),
            org_role: token.org_role.as_ref().map(|r| format!("org:{r}")),
            org_permissions: self.org.as_ref().map(|_| token.org_permissions.clone()),
            factor_verification_age: token.fva,
            features: Some(token.features.join(",")),
            plans: token.plan.as_ref().map(|p| {
                let scope = match p.scope {
                    PayerKind::User => "u",
                    PayerKind::Org => "o",
                };
                format!("{scope}:{}", p.slug)
            }),
        })
    }

    /// The evidence the entitlement decision weighs: the payers' current items, the token, and
    /// (for a gate that asks more than billing) the auth object.
    pub fn evidence<'a>(
        &'a self,
        user_item: Option<&'a ItemState>,
        org_item: Option<&'a ItemState>,
        authorization: Option<&'a AuthObject>,
    ) -> Evidence<'a> {
        let token = self.token.as_ref();
        Evidence {
            user_item,
            org_item,
            active_org: self.organization().is_some(),
            token_plan: token.and_then(|t| t.plan.clone()),
            token_features: token.map(|t| t.features.clone()).unwrap_or_default(),
            token_iat_ms: token.map_or(0, |t| t.iat_ms),
            authorization,
        }
    }
}

/// An account's answer for one gate: the decision, and the payer whose plan it read (who pays
/// for a metered unit, whose billing a past-due banner names).
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub account: Account,
    pub decision: Decision,
    pub payer: Payer,
}

impl Access {
    pub fn new(account: Account, decision: Decision) -> Access {
        let payer = account.pays(decision.scope).clone();
        Access {
            account,
            decision,
            payer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(org: Option<&str>) -> Account {
        Account {
            caller: Payer::user("user_1"),
            org: org.map(Payer::org),
            token: Some(TokenEvidence {
                plan: TokenPlan::parse("o:team"),
                features: vec!["o:reports".into()],
                iat_ms: 7,
                org_role: Some("admin".into()),
                org_permissions: vec!["org:reports:read".into()],
                fva: Some([3, -1]),
            }),
        }
    }

    fn org_alone() -> Account {
        Account {
            caller: Payer::org("org_9"),
            org: None,
            token: None,
        }
    }

    #[test]
    fn the_organization_pays_for_its_plan_and_the_caller_for_everything_else() {
        let a = session(Some("org_1"));
        assert_eq!(a.pays(Some(PayerKind::Org)), &Payer::org("org_1"));
        assert_eq!(a.pays(Some(PayerKind::User)), &Payer::user("user_1"));
        assert_eq!(a.pays(None), &Payer::user("user_1"));
        // An organization's plan with no active organization: the user.
        assert_eq!(
            session(None).pays(Some(PayerKind::Org)),
            &Payer::user("user_1")
        );
        // An organization calling alone pays whatever the scope.
        assert_eq!(
            org_alone().pays(Some(PayerKind::User)),
            &Payer::org("org_9")
        );
        assert_eq!(org_alone().pays(Some(PayerKind::Org)), &Payer::org("org_9"));
    }

    #[test]
    fn the_payers_are_the_caller_then_the_active_organization() {
        let a = session(Some("org_1"));
        assert_eq!(
            a.payers(),
            vec![&Payer::user("user_1"), &Payer::org("org_1")]
        );
        assert_eq!(a.user(), Some(&Payer::user("user_1")));
        assert_eq!(a.organization(), Some(&Payer::org("org_1")));
        assert_eq!(session(None).payers(), vec![&Payer::user("user_1")]);
        assert_eq!(session(None).organization(), None);
        assert_eq!(org_alone().user(), None);
        assert_eq!(org_alone().organization(), Some(&Payer::org("org_9")));
        assert_eq!(org_alone().payers(), vec![&Payer::org("org_9")]);
    }

    #[test]
    fn the_evidence_is_the_token_and_the_items_handed_in() {
        let a = session(Some("org_1"));
        let auth = a.auth_object();
        let ev = a.evidence(None, None, auth.as_ref());
        assert!(ev.active_org);
        assert_eq!(ev.token_plan, TokenPlan::parse("o:team"));
        assert_eq!(ev.token_features, vec!["o:reports".to_string()]);
        assert_eq!(ev.token_iat_ms, 7);
        assert_eq!(
            ev.authorization.and_then(|a| a.user_id.as_deref()),
            Some("user_1")
        );
        assert!(!session(None).evidence(None, None, None).active_org);
        let alone = org_alone();
        assert_eq!(alone.auth_object(), None, "no token: no auth object");
        let ev = alone.evidence(None, None, None);
        assert!(ev.active_org && ev.token_plan.is_none() && ev.token_features.is_empty());
        assert!(
            ev.authorization.is_none(),
            "no token: no organization role, no reverification"
        );
        assert_eq!(ev.token_iat_ms, 0);
    }

    #[test]
    fn the_auth_object_is_what_clerks_has_reads_from_the_session() {
        let a = session(Some("org_1")).auth_object().unwrap();
        assert_eq!(a.user_id.as_deref(), Some("user_1"));
        assert_eq!(a.org_id.as_deref(), Some("org_1"));
        assert_eq!(a.org_role.as_deref(), Some("org:admin"));
        assert_eq!(
            a.org_permissions,
            Some(vec!["org:reports:read".to_string()])
        );
        assert_eq!(a.factor_verification_age, Some([3, -1]));
        assert_eq!(a.features.as_deref(), Some("o:reports"));
        assert_eq!(a.plans.as_deref(), Some("o:team"));
        let no_org = session(None).auth_object().unwrap();
        assert_eq!((no_org.org_id, no_org.org_permissions), (None, None));
        let mut user_plan = session(None);
        user_plan.token.as_mut().unwrap().plan = TokenPlan::parse("u:pro");
        assert_eq!(
            user_plan.auth_object().unwrap().plans.as_deref(),
            Some("u:pro")
        );
    }

    #[test]
    fn an_access_names_who_pays_for_its_decision() {
        let decision = |scope| Decision {
            allowed: true,
            plan: Some("team".into()),
            status: None,
            reason: "active",
            source: super::super::Source::Token,
            until: None,
            scope,
            is_free_trial: false,
            period_start: None,
            period_end: None,
            past_due_at: None,
        };
        let access = Access::new(session(Some("org_1")), decision(Some(PayerKind::Org)));
        assert_eq!(access.payer, Payer::org("org_1"));
        let access = Access::new(session(Some("org_1")), decision(None));
        assert_eq!(access.payer, Payer::user("user_1"));
    }
}
