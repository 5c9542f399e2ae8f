//! Clerk's browser side, from Clerk's own scripts: clerk-js v6 and `@clerk/ui`, both from the
//! Frontend API host of the publishable key.
//!
//! `ClerkLoader` sits in the layout of every page (clerk-js keeps the 60-second `__session`
//! cookie fresh, so it must run everywhere); `ClerkMount` mounts a component (PricingTable,
//! SignIn) once the loader is ready. If Clerk's scripts cannot load, the page says so instead of
//! staying blank.

use leptos::{nonce::use_nonce, prelude::*};

/// `s` as a JavaScript string literal that is safe inside an inline `<script>`: JSON, with `<`,
/// `>` and `&` escaped (no `</script>` or `<!--` can close or change the element) and U+2028/
/// U+2029 escaped (line terminators in older JavaScript).
pub fn js_string(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// An inline script carrying this response's CSP nonce.
#[component]
pub fn InlineScript(#[prop(into)] code: String) -> impl IntoView {
    view! { <script nonce=use_nonce() inner_html=code></script> }
}

#[component]
pub fn ClerkLoader(
    publishable_key: String,
    clerk_js_url: String,
    clerk_ui_url: String,
    signed_in: bool,
) -> impl IntoView {
    let script = format!(
        r#"(function () {{
  function load(src, attrs) {{
    return new Promise(function (resolve, reject) {{
      var s = document.createElement('script');
      s.src = src; s.async = true; s.crossOrigin = 'anonymous';
      Object.keys(attrs).forEach(function (k) {{ s.setAttribute(k, attrs[k]); }});
      s.onload = resolve; s.onerror = reject;
      document.head.appendChild(s);
    }});
  }}
  window.__plangateClerk = Promise.all([
    load({ui}, {{}}),
    load({js}, {{ 'data-clerk-publishable-key': {pk} }})
  ]).then(function () {{
    return window.Clerk.load({{ ui: {{ ClerkUI: window.__internal_ClerkUICtor }} }});
  }});
  // An expired or stale session cookie is refreshed by the server's handshake before the
  // page renders. What it cannot see: a browser with no Clerk cookie here at all (first visit,
  // cookies cleared) whose Clerk client is signed in; clerk-js then sets the cookies, and the
  // page renders once more with them.
  var hadUat = /(^|;\s*)__client_uat(_[^=]*)?=[1-9]/.test(document.cookie);
  window.__plangateClerk.then(function () {{
    var key = 'plangate-resync';
    if (window.Clerk.session && !{signed_in} && !hadUat && !sessionStorage.getItem(key)) {{
      sessionStorage.setItem(key, '1'); location.reload();
    }} else {{ sessionStorage.removeItem(key); }}
  }}, function () {{}});
}})();"#,
        ui = js_string(&clerk_ui_url),
        js = js_string(&clerk_js_url),
        pk = js_string(&publishable_key),
    );
    view! { <InlineScript code=script/> }
}

#[component]
pub fn ClerkMount(
    /// `pricing`, `sign-in` or `api-keys`
    kind: &'static str,
    #[prop(default = "user".to_string())] for_: String,
    #[prop(default = "/dashboard?checkout=1".to_string())] redirect: String,
) -> impl IntoView {
    let mount = match kind {
        // Clerk's API-keys component; a development instance without API keys enabled throws,
        // and the page says what to switch on instead of staying blank.
        "api-keys" => "try { window.Clerk.mountAPIKeys(el); } catch (e) { status.textContent = 'API keys are not enabled for this Clerk application: turn them on in the Clerk Dashboard (API keys), then reload.'; status.setAttribute('data-state', 'error'); status.hidden = false; }".to_string(),
        "sign-in" => format!(
            "window.Clerk.mountSignIn(el, {{ forceRedirectUrl: {} }});",
            js_string("/dashboard")
        ),
        _ => format!(
            "window.Clerk.mountPricingTable(el, {{ for: {}, newSubscriptionRedirectUrl: {} }});",
            js_string(&for_),
            js_string(&redirect)
        ),
    };
    let script = format!(
        r#"(function () {{
  // Built here, not by Leptos: hydration leaves the empty root's children alone.
  var root = document.getElementById('clerk-root');
  var status = document.createElement('p');
  status.id = 'clerk-status'; status.className = 'clerk-status';
  status.setAttribute('data-state', 'loading'); status.textContent = 'Loading Clerk…';
  var el = document.createElement('div');
  el.id = 'clerk-mount';
  root.appendChild(status); root.appendChild(el);
  (window.__plangateClerk || Promise.reject(new Error('no loader'))).then(function () {{
    status.setAttribute('data-state', 'ready'); status.hidden = true;
    {mount}
  }}).catch(function () {{
    status.textContent = 'Could not load Clerk. Check your connection or ad blocker, then reload the page.';
    status.setAttribute('data-state', 'error');
    status.hidden = false;
  }});
}})();"#
    );
    view! {
        <div id="clerk-root" data-clerk-kind=kind></div>
        <InlineScript code=script/>
    }
}

/// Demo mode: refresh the 60-second session token before it expires, as clerk-js would.
#[component]
pub fn DemoRefresher() -> impl IntoView {
    let script = "setInterval(function () { fetch('/demo/refresh', { method: 'POST', credentials: 'same-origin' }); }, 40000);";
    view! { <InlineScript code=script/> }
}

/// Clerk's sign-out button: the handler is attached by a nonced script (an inline `onclick`
/// attribute would need `'unsafe-inline'`).
#[component]
pub fn ClerkSignOut() -> impl IntoView {
    let script = "document.getElementById('clerk-sign-out').addEventListener('click', function () { if (window.Clerk) { window.Clerk.signOut({ redirectUrl: '/' }); } });";
    view! {
        <button type="button" class="link" id="clerk-sign-out">"Sign out"</button>
        <InlineScript code=script/>
    }
}

#[cfg(test)]
mod tests {
    use super::js_string;

    #[test]
    fn strings_cannot_close_or_change_an_inline_script() {
        let s = js_string("</script><script>alert(1)</script><!-- & \u{2028}\u{2029}\"'");
        for bad in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
            assert!(!s.contains(bad), "{bad:?} in {s}");
        }
        // Still the same string to JavaScript (JSON is a subset of it).
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(
            back,
            "</script><script>alert(1)</script><!-- & \u{2028}\u{2029}\"'"
        );
        assert_eq!(js_string("pk_test_abc"), "\"pk_test_abc\"");
    }
}
