//! The Content-Security-Policy of every HTML response.
//!
//! Scripts run only with this response's nonce (Leptos puts it on its hydration scripts; our
//! inline scripts carry it too) or, through `'strict-dynamic'`, when a script holding it loads
//! them (clerk-js, which loads Cloudflare's and Stripe's). The hosts come from Clerk's
//! documented list plus Stripe's, for browsers without `'strict-dynamic'`. `'wasm-unsafe-eval'`
//! lets the hydration bundle compile; it allows no JavaScript `eval`. Inline styles stay
//! allowed: Clerk's components inject them.

use axum::http::HeaderValue;
use base64::Engine;

pub struct Csp {
    /// The policy up to the nonce, and after it.
    before_nonce: String,
    after_nonce: String,
    /// For an HTML response rendered without a nonce: no inline script runs.
    without_nonce: HeaderValue,
}

/// A fresh nonce: 16 random bytes, URL-safe base64 (22 characters, no quotes or spaces).
pub fn new_nonce() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Csp {
    /// `frontend_api_host` is Clerk's (none in demo mode); `reload_port` is cargo-leptos'
    /// live-reload socket in development; `https` adds `upgrade-insecure-requests`.
    pub fn new(frontend_api_host: Option<&str>, reload_port: Option<u16>, https: bool) -> Csp {
        let fapi = frontend_api_host
            .map(|h| format!(" https://{h}"))
            .unwrap_or_default();
        let reload = reload_port
            .map(|p| format!(" ws://localhost:{p} ws://127.0.0.1:{p}"))
            .unwrap_or_default();
        let hosts = format!(
            "{fapi} https://challenges.cloudflare.com https://*.protect.clerk.com https://js.stripe.com"
        );
        let rest = format!(
            "; connect-src 'self'{fapi} https://*.protect.clerk.com https://clerk-telemetry.com \
             https://api.stripe.com{reload}\
             ; img-src 'self' data: https://img.clerk.com https://*.stripe.com\
             ; style-src 'self' 'unsafe-inline'\
             ; font-src 'self' data:\
             ; frame-src 'self' https://challenges.cloudflare.com https://js.stripe.com \
             https://*.js.stripe.com https://hooks.stripe.com\
             ; worker-src 'self' blob:\
             ; form-action 'self'\
             ; object-src 'none'; base-uri 'self'; frame-ancestors 'none'{}",
            if https {
                "; upgrade-insecure-requests"
            } else {
                ""
            }
        );
        let before_nonce = "default-src 'self'; script-src 'self' 'nonce-".to_string();
        let after_nonce = format!("' 'strict-dynamic' 'wasm-unsafe-eval'{hosts}{rest}");
        let without_nonce =
            format!("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{rest}");
        Csp {
            before_nonce,
            after_nonce,
            without_nonce: HeaderValue::from_str(&without_nonce)
                .expect("the policy is plain ASCII"),
        }
    }

    /// The policy for a response whose inline scripts carry `nonce` (or none).
    pub fn header(&self, nonce: Option<&str>) -> HeaderValue {
        match nonce {
            Some(n)
                if !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                let mut v = String::with_capacity(
                    self.before_nonce.len() + n.len() + self.after_nonce.len(),
                );
                v.push_str(&self.before_nonce);
                v.push_str(n);
                v.push_str(&self.after_nonce);
                HeaderValue::from_str(&v).unwrap_or_else(|_| self.without_nonce.clone())
            }
            _ => self.without_nonce.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directives(v: &HeaderValue) -> Vec<String> {
        v.to_str()
            .unwrap()
            .split(';')
            .map(|d| d.trim().to_string())
            .collect()
    }

    fn directive(v: &HeaderValue, name: &str) -> String {
        directives(v)
            .into_iter()
            .find(|d| d.split(' ').next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {v:?}"))
    }

    #[test]
    fn scripts_run_by_nonce_only_and_never_inline() {
        let csp = Csp::new(Some("clerk.example.com"), None, true);
        let n = new_nonce();
        let h = csp.header(Some(&n));
        let script = directive(&h, "script-src");
        assert!(script.contains(&format!("'nonce-{n}'")), "{script}");
        assert!(!script.contains("unsafe-inline") && !script.contains("'unsafe-eval'"));
        assert!(script.contains("https://clerk.example.com"));
        for host in [
            "challenges.cloudflare.com",
            "js.stripe.com",
            "*.protect.clerk.com",
        ] {
            assert!(script.contains(host), "{script}");
        }
        assert_eq!(directive(&h, "object-src"), "object-src 'none'");
        assert_eq!(directive(&h, "base-uri"), "base-uri 'self'");
        assert_eq!(directive(&h, "frame-ancestors"), "frame-ancestors 'none'");
        assert!(directive(&h, "img-src").contains("https://img.clerk.com"));
        assert!(directive(&h, "connect-src").contains("https://api.stripe.com"));
        assert!(directive(&h, "frame-src").contains("https://hooks.stripe.com"));
        assert!(directives(&h).contains(&"upgrade-insecure-requests".to_string()));
    }

    #[test]
    fn a_missing_or_odd_nonce_allows_no_inline_script() {
        let csp = Csp::new(None, None, false);
        for n in [None, Some(""), Some("a' 'unsafe-inline"), Some("x;y")] {
            let h = csp.header(n);
            let script = directive(&h, "script-src");
            assert_eq!(script, "script-src 'self' 'wasm-unsafe-eval'", "{n:?}");
        }
        assert!(!directives(&csp.header(None)).contains(&"upgrade-insecure-requests".to_string()));
    }

    #[test]
    fn nonces_are_fresh_each_time() {
        let a = new_nonce();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_nonce());
    }

    #[test]
    fn the_development_reload_socket_is_allowed_only_when_asked() {
        let h = Csp::new(None, Some(3001), false).header(Some("abc"));
        assert!(directive(&h, "connect-src").contains("ws://127.0.0.1:3001"));
        let h = Csp::new(None, None, false).header(Some("abc"));
        assert!(!directive(&h, "connect-src").contains("ws:"));
    }
}
