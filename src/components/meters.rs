//! Usage meters (README, "Usage limits"): each limited feature as used of limit with a bar and
//! the reset day, and at the limit the way to a plan with more. The numbers come from the server;
//! the demo's "Call the API" button calls the real metered API and shows what it answered.

use leptos::prelude::*;

use super::clerk::InlineScript;
use crate::page_data::MeterView;

#[component]
pub fn Meters(meters: Vec<MeterView>) -> impl IntoView {
    (!meters.is_empty()).then(|| {
        view! {
            <div class="card meters">
                <h2>"Usage this period"</h2>
                {meters.into_iter().map(|m| {
                    let id = format!("meter-{}", m.feature);
                    let (testid, label_for) = (id.clone(), id.clone());
                    let at_limit = m.at_limit();
                    view! {
                        <div class="meter" data-testid=testid data-feature=m.feature.clone()>
                            <label for=label_for>{m.name.clone()}</label>
                            <meter id=id min="0" max=m.limit.to_string() high=(m.limit * 8 / 10).to_string() value=m.used.to_string()></meter>
                            <p class="small">
                                <span data-testid="meter-used" class="meter-used">{m.used}</span>
                                " of "
                                <span data-testid="meter-limit" class="meter-limit">{m.limit}</span>
                                {format!(" used; the count starts again on {}.", m.resets)}
                            </p>
                            <p class="banner warn limit-reached" data-testid="limit-reached" hidden=!at_limit>
                                {format!("You have used all of your {} for this period. ", m.name)}
                                <a href="/pricing" rel="external">"Choose a plan with a higher limit"</a>
                            </p>
                        </div>
                    }
                }).collect_view()}
            </div>
        }
    })
}

/// Demo mode: calls `GET /api/premium-feature` from the browser, as a customer's code would, and
/// moves the meter by what the answer's `RateLimit-*` headers say.
#[component]
pub fn CallApi() -> impl IntoView {
    let script = r#"document.addEventListener('click', function (e) {
  var b = e.target.closest && e.target.closest('[data-testid="call-api"]');
  if (!b) return;
  var out = document.querySelector('[data-testid="api-result"]');
  b.disabled = true;
  fetch('/api/premium-feature', { credentials: 'same-origin', headers: { accept: 'application/json' } })
    .then(function (r) {
      var limit = Number(r.headers.get('RateLimit-Limit')), left = r.headers.get('RateLimit-Remaining');
      var m = document.querySelector('[data-feature="premium_api"]');
      if (m && left !== null) {
        var used = limit - Number(left);
        m.querySelector('.meter-used').textContent = String(used);
        m.querySelector('meter').value = used;
        m.querySelector('.limit-reached').hidden = used < limit;
      }
      return r.json().then(function (body) {
        out.textContent = r.status === 200 ? 'The API answered: ' + body.message
          : r.status === 429 ? 'Refused: you have reached your limit for this period.'
          : 'The API answered ' + r.status + ': ' + ((body.error && body.error.message) || '');
        out.dataset.status = String(r.status);
      });
    })
    .catch(function () { out.textContent = 'The API could not be reached.'; })
    .then(function () { b.disabled = false; });
});"#;
    view! {
        <div class="card call-api">
            <h2>"Try the API"</h2>
            <p class="small">"Each call is one request to /api/premium-feature, counted against your plan's limit."</p>
            <button type="button" class="button primary" data-testid="call-api">"Call the API"</button>
            <p data-testid="api-result" role="status" aria-live="polite"></p>
            <InlineScript code=script/>
        </div>
    }
}
