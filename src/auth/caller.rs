//! Who is calling: the request guard's one decision about a request's session token, put in
//! the request for everything after it (the handshake edge, the page cache, the extractors,
//! server functions), so that no reader finds or verifies the token again.

use super::{AuthError, Session};

// Made once per request and moved, never kept in a collection: boxing the session would add an
// allocation to every request for no saving.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Caller {
    /// No session token came with the request, or the handshake decided that its cookie is not
    /// to be believed.
    Anonymous,
    /// The token verified.
    Verified(Session),
    /// A token came and did not verify (forged, expired, another instance's): never "signed
    /// out" to an API, which answers `401`; pages show the signed-out state.
    Rejected(AuthError),
    /// An API key (`Authorization: Bearer ak_…`) the Backend API vouched for: its owner.
    Key(crate::billing::Payer),
    /// An API key that could not be verified now (the Backend API did not answer): `503`,
    /// never an answer that opens anything.
    KeyUnavailable,
}

impl Caller {
    /// The verified session, if there is one.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Caller::Verified(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the request brought a token at all (verified or not).
    pub fn has_token(&self) -> bool {
        !matches!(self, Caller::Anonymous)
    }

    /// The guard's verdict on a session token as a verification result (`None` when no session
    /// token came: none at all, or an API key).
    pub fn verdict(&self) -> Option<Result<&Session, &AuthError>> {
        match self {
            Caller::Anonymous | Caller::Key(_) | Caller::KeyUnavailable => None,
            Caller::Verified(s) => Some(Ok(s)),
            Caller::Rejected(e) => Some(Err(e)),
        }
    }

    /// The caller a request carries: the guard's decision, or anonymous where the guard
    /// decided nothing (static files and health checks).
    pub fn of(extensions: &axum::http::Extensions) -> Caller {
        extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Anonymous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::example("user_1")
    }

    #[test]
    fn each_verdict_reads_as_what_it_is() {
        let v = Caller::Verified(session());
        assert_eq!(v.session().map(|s| s.user_id.as_str()), Some("user_1"));
        assert!(v.has_token());
        assert!(matches!(v.verdict(), Some(Ok(_))));
        let r = Caller::Rejected(AuthError::Expired);
        assert!(r.session().is_none());
        assert!(r.has_token());
        assert!(matches!(r.verdict(), Some(Err(AuthError::Expired))));
        let a = Caller::Anonymous;
        assert!(a.session().is_none() && !a.has_token() && a.verdict().is_none());
        let mut ext = axum::http::Extensions::new();
        assert!(matches!(Caller::of(&ext), Caller::Anonymous));
        ext.insert(Caller::Verified(session()));
        assert!(Caller::of(&ext).session().is_some());
    }
}
