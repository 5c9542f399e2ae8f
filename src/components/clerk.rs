//! Mounts a Clerk component (PricingTable, SignIn) from Clerk's own scripts: clerk-js v6 and
//! `@clerk/ui`, both from the Frontend API host of the publishable key. If either script cannot
//! load, the page says so instead of staying blank.

use leptos::prelude::*;

fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[component]
pub fn ClerkMount(
    publishable_key: String,
    clerk_js_url: String,
    clerk_ui_url: String,
    /// `pricing` or `sign-in`
    kind: &'static str,
    #[prop(default = "user".to_string())] for_: String,
    #[prop(default = "/dashboard?checkout=1".to_string())] redirect: String,
) -> impl IntoView {
    let mount = match kind {
        "sign-in" => format!(
            "Clerk.mountSignIn(el, {{ forceRedirectUrl: {} }});",
            js_string("/dashboard")
        ),
        _ => format!(
            "Clerk.mountPricingTable(el, {{ for: {}, newSubscriptionRedirectUrl: {} }});",
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
  function fail() {{
    status.textContent = 'Could not load Clerk. Check your connection or ad blocker, then reload the page.';
    status.setAttribute('data-state', 'error');
    status.hidden = false;
  }}
  function load(src, attrs) {{
    return new Promise(function (resolve, reject) {{
      var s = document.createElement('script');
      s.src = src; s.async = true; s.crossOrigin = 'anonymous';
      Object.keys(attrs).forEach(function (k) {{ s.setAttribute(k, attrs[k]); }});
      s.onload = resolve; s.onerror = reject;
      document.head.appendChild(s);
    }});
  }}
  Promise.all([
    load({ui}, {{}}),
    load({js}, {{ 'data-clerk-publishable-key': {pk} }})
  ]).then(function () {{
    return window.Clerk.load({{ ui: {{ ClerkUI: window.__internal_ClerkUICtor }} }});
  }}).then(function () {{
    status.setAttribute('data-state', 'ready'); status.hidden = true;
    {mount}
  }}).catch(fail);
}})();"#,
        ui = js_string(&clerk_ui_url),
        js = js_string(&clerk_js_url),
        pk = js_string(&publishable_key),
    );
    view! {
        <div id="clerk-root" data-clerk-kind=kind></div>
        <script inner_html=script></script>
    }
}
