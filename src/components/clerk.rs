//! Clerk's browser side, from Clerk's own scripts: clerk-js v6 and `@clerk/ui`, both from the
//! Frontend API host of the publishable key.
//!
//! `ClerkLoader` sits in the layout of every page (clerk-js keeps the 60-second `__session`
//! cookie fresh, so it must run everywhere); `ClerkMount` mounts a component (PricingTable,
//! SignIn) once the loader is ready. If Clerk's scripts cannot load, the page says so instead of
//! staying blank.

use leptos::prelude::*;

fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
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
  window.__plangateClerk.then(function () {{
    // Like Clerk's handshake: the server saw no valid session but clerk-js has one (the
    // cookie had expired); render once more with the fresh token.
    var key = 'plangate-resync';
    if (window.Clerk.session && !{signed_in} && !sessionStorage.getItem(key)) {{
      sessionStorage.setItem(key, '1'); location.reload();
    }} else {{ sessionStorage.removeItem(key); }}
  }}, function () {{}});
}})();"#,
        ui = js_string(&clerk_ui_url),
        js = js_string(&clerk_js_url),
        pk = js_string(&publishable_key),
    );
    view! { <script inner_html=script></script> }
}

#[component]
pub fn ClerkMount(
    /// `pricing` or `sign-in`
    kind: &'static str,
    #[prop(default = "user".to_string())] for_: String,
    #[prop(default = "/dashboard?checkout=1".to_string())] redirect: String,
) -> impl IntoView {
    let mount = match kind {
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
        <script inner_html=script></script>
    }
}

/// Demo mode: refresh the 60-second session token before it expires, as clerk-js would.
#[component]
pub fn DemoRefresher() -> impl IntoView {
    let script = "setInterval(function () { fetch('/demo/refresh', { method: 'POST', credentials: 'same-origin' }); }, 40000);";
    view! { <script inner_html=script></script> }
}
