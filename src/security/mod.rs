//! Security rules that are not HTTP plumbing: the Content-Security-Policy (`csp`), the
//! per-address limit on failed attempts and the trusted-proxy rule for client addresses
//! (`limit`), and which token failures count as forgeries. The request guard in `http`
//! applies them.

pub mod csp;
pub mod limit;

pub use limit::{client_ip, RateLimiter, TrustedProxies};

use crate::auth::AuthError;

/// Whether a token failure means someone tried a token that Clerk never signed. A token with a
/// valid signature that is merely expired (every returning visitor sends one) or not valid
/// for this app is not an attack on the keys and is not counted.
pub fn is_forgery(e: AuthError) -> bool {
    matches!(
        e,
        AuthError::Malformed | AuthError::Algorithm | AuthError::UnknownKey | AuthError::Invalid
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_clerk_never_signed_count_as_forgeries() {
        for e in [
            AuthError::Malformed,
            AuthError::Algorithm,
            AuthError::UnknownKey,
            AuthError::Invalid,
        ] {
            assert!(is_forgery(e), "{e:?}");
        }
        for e in [
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::IssuedInFuture,
            AuthError::AuthorizedParty,
            AuthError::NoSession,
            AuthError::Pending,
            AuthError::Missing,
        ] {
            assert!(!is_forgery(e), "{e:?}");
        }
    }
}
