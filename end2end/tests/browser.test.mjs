import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const DEMO = process.env.DEMO_URL;
const CLERK = process.env.CLERK_URL;
const SHORT = process.env.SHORT_URL;
const shots = join(dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');
const DASHBOARD = /\/dashboard(\?.*)?$/;
const axeSource = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

// axe-core on the page as it is now (run through the DevTools protocol, so the page's CSP is
// untouched): every WCAG 2.x A/AA rule and axe's best practices; zero violations wanted.
async function axe(p, state) {
  await p.evaluate(axeSource);
  const violations = await p.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`));
  assert.deepEqual(violations, [], `axe-core on ${state} (${p.url()})`);
}

// No horizontal scroll on a phone (390 and 320 px wide), then back to the desktop size.
async function fitsPhone(p, state) {
  const size = p.viewportSize();
  for (const phone of [390, 320]) {
    await p.setViewportSize({ width: phone, height: 844 });
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= phone, `${state} is ${width}px wide at ${phone} (${p.url()})`);
  }
  await p.setViewportSize(size);
}

async function check(p, state) {
  await axe(p, state);
  await fitsPhone(p, state);
}
mkdirSync(shots, { recursive: true });

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
after(async () => { await browser?.close(); });

// Every Content-Security-Policy violation on any page of the context: the event each page
// fires, and Chromium's console report of it.
async function page(base) {
  const context = await browser.newContext({ baseURL: base });
  const csp = [];
  await context.exposeBinding('__cspViolation', (_, v) => { csp.push(v); });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} on ${location.pathname}`);
    });
  });
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(String(e)));
  p.on('console', (m) => {
    if (m.type() === 'error' && /hydrat|panicked/i.test(m.text())) errors.push(m.text());
    if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
  });
  return { p, context, errors, csp };
}

test('every page renders and the 404 page answers 404', async () => {
  const { p, context, errors } = await page(DEMO);
  for (const [path, text] of [['/', 'Premium, decided on the server'], ['/pricing', 'Plans'], ['/sign-in', 'Sign in'],
    ['/dashboard', 'Dashboard'], ['/dashboard/payment-gated', 'Premium']]) {
    const resp = await p.goto(path);
    assert.equal(resp.status(), 200, path);
    await p.getByText(text).first().waitFor();
  }
  const missing = await p.goto('/nowhere/at/all');
  assert.equal(missing.status(), 404);
  await p.getByText('Page not found').waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});

test('pages run under a CSP: no violation by the app, and an injected inline script does not run', async () => {
  for (const base of [DEMO, CLERK]) {
    const { p, context, errors, csp } = await page(base);
    await context.route('https://e2e-test-1.clerk.accounts.dev/**', (route) => route.abort());
    // The dev-browser token a development instance's handshake leaves (see the next test).
    if (base === CLERK) await context.addCookies([{ name: '__clerk_db_jwt', value: 'dvb_e2e', url: CLERK }]);
    for (const path of ['/', '/pricing', '/sign-in', '/dashboard', '/dashboard/payment-gated', '/nowhere']) {
      const resp = await p.goto(path);
      const policy = resp.headers()['content-security-policy'] || '';
      assert.match(policy, /script-src 'self' 'nonce-[A-Za-z0-9_-]{22}' 'strict-dynamic'/, `${base}${path}`);
      await p.waitForLoadState('networkidle');
    }
    assert.deepEqual(csp, [], `${base}: the app's own pages break no rule`);
    assert.deepEqual(errors, []);
    // The attacker's view: markup that slipped into a served page (a script element, an
    // inline handler) cannot run script; the page's own nonced scripts still do.
    await context.route('**/pricing?injected', async (route) => {
      const resp = await route.fetch();
      // In <head>, outside what hydration walks.
      const body = (await resp.text()).replace('</head>',
        '<script>window.__injected = true</script><link rel="stylesheet" href="/nope.css" onerror="window.__injected = true"></head>');
      await route.fulfill({ response: resp, body });
    });
    await p.goto('/pricing?injected');
    await p.waitForLoadState('networkidle');
    await p.waitForTimeout(200);
    assert.equal(await p.evaluate(() => window.__injected), undefined, `${base}: injected script ran`);
    assert.ok(csp.length >= 2, `${base}: both injections were reported: ${csp.join(' | ')}`);
    await context.close();
  }
});

test('navigation after hydration changes the route without a full reload', async () => {
  const { p, context, errors, csp } = await page(DEMO);
  await p.goto('/');
  // Wait for hydration: the wasm module has run once the router handles clicks.
  await p.waitForFunction(() => performance.getEntriesByType('resource').some((r) => r.name.endsWith('.wasm')));
  await p.waitForTimeout(500);
  await p.evaluate(() => { window.__marker = 'still-here'; });
  await p.locator('header nav').getByRole('link', { name: 'Dashboard' }).click();
  await p.waitForURL(DASHBOARD);
  await p.getByRole('heading', { name: 'Dashboard' }).waitFor();
  assert.equal(await p.evaluate(() => window.__marker), 'still-here', 'no full reload');
  assert.deepEqual(errors, []);
  assert.deepEqual(csp, [], 'hydration runs under the CSP');
  await context.close();
});

test('pricing with a Clerk key requests clerk-js from the Frontend API and says when it cannot load', async () => {
  // A development instance first sends a browser without its dev-browser token through
  // Clerk's handshake (here: unreachable, so the navigation fails there). A redirect is not
  // routed, so it is seen as a request.
  {
    const { p, context } = await page(CLERK);
    await context.route('https://e2e-test-1.clerk.accounts.dev/**', (route) => route.abort());
    const navigated = [];
    p.on('request', (r) => navigated.push(r.url()));
    await p.goto('/pricing').catch(() => {});
    const handshake = navigated.find((u) => u.startsWith('https://e2e-test-1.clerk.accounts.dev/v1/client/handshake?'));
    assert.ok(handshake, navigated.join(','));
    const q = new URL(handshake).searchParams;
    assert.equal(q.get('redirect_url'), `${CLERK}/pricing`);
    assert.equal(q.get('__clerk_hs_reason'), 'dev-browser-missing');
    await context.close();
  }
  // With the token Clerk's handshake would have set, the page is served.
  const { p, context } = await page(CLERK);
  const requested = [];
  await context.route('https://e2e-test-1.clerk.accounts.dev/**', (route) => {
    requested.push(route.request().url());
    return route.abort();
  });
  await context.addCookies([{ name: '__clerk_db_jwt', value: 'dvb_e2e', url: CLERK }]);
  await p.goto('/pricing');
  const status = p.locator('#clerk-status');
  await status.getByText('Could not load Clerk').waitFor();
  assert.equal(await status.getAttribute('data-state'), 'error');
  assert.ok(requested.includes('https://e2e-test-1.clerk.accounts.dev/npm/@clerk/clerk-js@6/dist/clerk.browser.js'), requested.join(','));
  await p.screenshot({ path: join(shots, 'pricing-clerk-unavailable.png'), fullPage: true });
  await context.close();
});

test('the demo subscription story, from free to canceled, on every page state: axe-core, the phone, the billing page', async () => {
  const { p, context, errors, csp } = await page(DEMO);
  // Signed out.
  for (const path of ['/', '/pricing', '/sign-in', '/dashboard', '/dashboard/payment-gated', '/dashboard/billing', '/nowhere']) {
    await p.goto(path);
    await check(p, `signed out ${path}`);
  }
  assert.equal(await p.title(), 'Page not found · plangate');
  await p.goto('/sign-in');
  assert.equal(await p.title(), 'Sign in · plangate');
  // The name field's pattern works in Chromium: a blank inside is refused, not renamed.
  await p.getByLabel('Name').fill('carol smith');
  assert.equal(await p.getByLabel('Name').evaluate((e) => e.validity.patternMismatch), true);
  await p.getByRole('button', { name: 'Continue as alice' }).click();
  await p.waitForURL(DASHBOARD);
  await p.getByText('demo mode', { exact: false }).first().waitFor();
  assert.equal(await p.getByTestId('plan').textContent(), 'Free');
  assert.equal(await p.getByTestId('entitled').textContent(), 'no');
  assert.equal(await p.getByTestId('who').textContent(), 'alice@demo.plangate.test');
  assert.equal(await p.getByRole('link', { name: 'Dashboard' }).getAttribute('aria-current'), 'page');
  await check(p, 'free /dashboard');

  await p.goto('/dashboard/payment-gated');
  await p.getByTestId('upgrade-prompt').waitFor();
  assert.equal(await p.getByTestId('premium-content').count(), 0);
  assert.ok(!(await p.content()).includes('Monthly recurring revenue'));
  assert.equal(await p.getByRole('link', { name: 'Premium' }).getAttribute('aria-current'), 'page');
  await check(p, 'free premium page');

  await p.goto('/pricing');
  await check(p, 'free /pricing');
  await p.screenshot({ path: join(shots, 'pricing.png'), fullPage: true });
  await p.getByRole('button', { name: 'Subscribe to Pro monthly' }).click();
  await p.waitForURL(DASHBOARD);
  await p.getByTestId('notice').waitFor();
  assert.match(await p.getByTestId('notice').textContent(), /your subscription is active/);
  assert.equal(await p.getByTestId('plan').textContent(), 'Pro');
  assert.equal(await p.getByTestId('status').textContent(), 'Active');
  assert.match(await p.getByTestId('date-line').textContent(), /^Renews on \d{1,2} [A-Z][a-z]+ \d{4}$/);
  await check(p, 'paid /dashboard');
  await p.screenshot({ path: join(shots, 'dashboard-active.png'), fullPage: true });

  await p.getByRole('link', { name: 'Billing', exact: true }).click();
  await p.waitForURL('**/dashboard/billing');
  assert.equal(await p.title(), 'Billing · plangate');
  await p.getByTestId('payment').first().waitFor();
  assert.equal(await p.getByTestId('payment').count(), 1, 'one row per attempt: created and updated');
  assert.match(await p.getByTestId('payment').first().textContent(), /\$20\.00.*Paid.*Visa ending in 4242/);
  assert.match(await p.getByTestId('billing-date').textContent(), /^Renews on /);
  assert.equal(await p.getByTestId('billing-price').textContent(), '$20.00 a month');
  await check(p, 'paid /dashboard/billing');
  await p.screenshot({ path: join(shots, 'billing-paid.png'), fullPage: true });
  await p.setViewportSize({ width: 390, height: 844 });
  await p.screenshot({ path: join(shots, 'billing-paid-phone.png'), fullPage: true });
  await p.setViewportSize({ width: 1280, height: 720 });

  await p.goto('/dashboard/payment-gated');
  await p.getByTestId('premium-content').waitFor();
  await check(p, 'paid premium page');
  await p.screenshot({ path: join(shots, 'gated-premium.png'), fullPage: true });

  await p.goto('/dashboard');
  await p.getByTestId('fail-payment').click();
  await p.waitForURL(DASHBOARD);
  await p.getByTestId('past-due-banner').waitFor();
  assert.equal(await p.getByTestId('status').textContent(), 'Payment overdue');
  assert.match(await p.getByTestId('past-due-banner').textContent(), /Your card was declined\./);
  await p.getByTestId('update-payment').waitFor();
  await check(p, 'past due /dashboard');
  await p.screenshot({ path: join(shots, 'dashboard-past-due.png'), fullPage: true });
  await p.goto('/dashboard/payment-gated');
  await p.getByTestId('past-due-banner').waitFor();
  assert.equal(await p.getByRole('button', { name: 'Update your payment method' }).count(), 1);
  for (const upsell of ['Upgrade', 'Choose a plan', 'Subscribe to']) {
    assert.ok(!(await p.locator('main').textContent()).includes(upsell), `no upsell to a payer: ${upsell}`);
  }
  await check(p, 'past due premium page');
  await p.screenshot({ path: join(shots, 'gated-past-due.png'), fullPage: true });
  await p.goto('/dashboard/billing');
  await p.getByTestId('past-due-banner').waitFor();
  assert.equal(await p.getByTestId('payment').count(), 2);
  assert.match(await p.getByTestId('payment').first().textContent(), /Failed: Your card was declined\./);
  await check(p, 'past due /dashboard/billing');
  await p.screenshot({ path: join(shots, 'billing-past-due.png'), fullPage: true });
  let mails = 0;
  for (let i = 0; i < 50 && mails === 0; i++) {
    await p.goto('/demo/mailbox');
    mails = await p.getByTestId('mail').count();
    if (!mails) await p.waitForTimeout(200);
  }
  assert.equal(mails, 1);
  assert.match(await p.getByTestId('mail').first().textContent(), /Payment failed for your Pro subscription/);
  await check(p, '/demo/mailbox');

  // Fixed from the billing page: the overdue attempt is paid.
  await p.goto('/dashboard/billing');
  await p.getByTestId('update-payment').click();
  await p.waitForURL('**/dashboard/billing?notice=recovered');
  await p.getByTestId('billing-status').filter({ hasText: 'Active' }).waitFor();
  assert.equal(await p.getByTestId('payment').count(), 2);
  assert.match(await p.getByTestId('payment').first().textContent(), /Paid/);

  await p.goto('/dashboard');
  await p.getByTestId('cancel').click();
  await p.getByTestId('confirm-cancel').waitFor();
  assert.equal(await p.getByTestId('status').textContent(), 'Active', 'nothing canceled yet');
  await check(p, 'cancel confirmation');
  await p.getByTestId('confirm-cancel-yes').click();
  await p.waitForURL(DASHBOARD);
  await p.getByTestId('canceled-banner').waitFor();
  await p.getByTestId('notice').waitFor();
  assert.equal(await p.getByTestId('entitled').textContent(), 'yes', 'still entitled until the period ends');
  const end = await p.getByTestId('period-end').textContent();
  assert.match(end, /^\d{1,2} [A-Z][a-z]+ \d{4}$/);
  assert.match(await p.getByTestId('canceled-banner').textContent(), new RegExp(`ends on ${end}`));
  await check(p, 'canceled /dashboard');
  await p.screenshot({ path: join(shots, 'dashboard-canceled.png'), fullPage: true });
  await p.goto('/dashboard/billing');
  assert.equal(await p.getByTestId('billing-date').textContent(), `Ends on ${end}`);
  await check(p, 'canceled /dashboard/billing');

  await p.goto('/demo/events');
  assert.ok((await p.getByTestId('event').count()) >= 10);
  await check(p, '/demo/events');
  // Exactly one mail for the whole story.
  await p.goto('/demo/mailbox');
  assert.equal(await p.getByTestId('mail').count(), 1);
  assert.deepEqual(errors, []);
  assert.deepEqual(csp, [], 'the whole story runs under the CSP');
  await context.close();
});

test('a demo free trial: "Trial ends on", and the one reminder mail', async () => {
  const { p, context, errors } = await page(DEMO);
  await p.goto('/sign-in');
  await p.getByLabel('Name').fill('trial-dana');
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  await p.waitForURL(DASHBOARD);
  await p.goto('/pricing');
  await p.getByRole('button', { name: 'Start a 14-day free trial of Pro' }).click();
  await p.waitForURL(DASHBOARD);
  assert.equal(await p.getByTestId('status').textContent(), 'Free trial');
  assert.match(await p.getByTestId('date-line').textContent(), /^Trial ends on \d{1,2} [A-Z][a-z]+ \d{4}$/);
  await check(p, 'trial /dashboard');
  await p.screenshot({ path: join(shots, 'dashboard-trial.png'), fullPage: true });
  await p.getByTestId('trial-ending').click();
  await p.waitForURL(DASHBOARD);
  await p.getByTestId('trial-ending').click();
  await p.waitForURL(DASHBOARD);
  let mails = 0;
  for (let i = 0; i < 50 && mails === 0; i++) {
    await p.goto('/demo/mailbox');
    mails = await p.getByTestId('mail').count();
    if (!mails) await p.waitForTimeout(200);
  }
  await p.waitForTimeout(500);
  await p.goto('/demo/mailbox');
  assert.equal(await p.getByTestId('mail').count(), 1, 'one reminder, however often Clerk sends it');
  assert.match(await p.getByTestId('mail').first().textContent(), /Your Pro trial ends on .*\$20\.00 a month/s);
  await p.goto('/dashboard/billing');
  assert.match(await p.getByTestId('billing-date').textContent(), /^Trial ends on /);
  assert.equal(await p.getByTestId('no-payments').count(), 1, 'a trial charges nothing');
  await check(p, 'trial /dashboard/billing');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the demo meter: spend from the premium page, the 80 % mail, and 429 at the limit', async () => {
  const { p, context, errors, csp } = await page(DEMO);
  await p.goto('/sign-in');
  await p.locator('#demo-name').fill('meter');
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  await p.waitForURL(DASHBOARD);
  await p.goto('/pricing');
  await p.getByTestId('subscribe-starter').click();
  await p.waitForURL(DASHBOARD);
  assert.equal(await p.getByTestId('plan').textContent(), 'Starter');
  const meter = p.getByTestId('meter-premium_api');
  assert.equal(await meter.getByTestId('meter-used').textContent(), '0');
  assert.equal(await meter.getByTestId('meter-limit').textContent(), '20');

  await p.goto('/dashboard/payment-gated');
  await p.getByTestId('premium-content').waitFor();
  const call = p.getByTestId('call-api');
  const result = p.getByTestId('api-result');
  for (let i = 1; i <= 16; i++) {
    await call.click();
    await p.waitForFunction((n) => document.querySelector('[data-feature="premium_api"] .meter-used').textContent === String(n), i);
  }
  assert.match(await result.textContent(), /The API answered: Premium feature unlocked/);
  assert.equal(await p.locator('[data-feature="premium_api"] meter').evaluate((m) => m.value), 16);
  await p.screenshot({ path: join(shots, 'meter-80.png'), fullPage: true });

  let mails = [];
  for (let i = 0; i < 50 && mails.length === 0; i++) {
    await p.goto('/demo/mailbox');
    mails = await p.getByTestId('mail').allTextContents();
    if (!mails.length) await p.waitForTimeout(200);
  }
  assert.equal(mails.length, 1, mails.join('\n'));
  assert.match(mails[0], /You have used 80% of your Premium API/);

  await p.goto('/dashboard/payment-gated');
  for (let i = 17; i <= 20; i++) {
    await call.click();
    await p.waitForFunction((n) => document.querySelector('[data-feature="premium_api"] .meter-used').textContent === String(n), i);
  }
  await call.click();
  await p.waitForFunction(() => document.querySelector('[data-testid="api-result"]').dataset.status === '429');
  assert.match(await result.textContent(), /reached your limit/);
  await p.getByTestId('limit-reached').waitFor();
  assert.equal(await p.getByTestId('limit-reached').getByRole('link').getAttribute('href'), '/pricing');
  await p.screenshot({ path: join(shots, 'meter-limit.png'), fullPage: true });

  // The server agrees after a reload, and the dashboard shows the same meter at its limit.
  await p.goto('/dashboard');
  assert.equal(await p.getByTestId('meter-premium_api').getByTestId('meter-used').textContent(), '20');
  await p.getByTestId('limit-reached').waitFor();
  await p.setViewportSize({ width: 390, height: 844 });
  await p.screenshot({ path: join(shots, 'meter-dashboard-phone.png'), fullPage: true });
  assert.deepEqual(errors, []);
  assert.deepEqual(csp, [], 'the meter runs under the CSP');
  await context.close();
});

test('an expired session is refreshed by the handshake before the first render, without a reload', async () => {
  const { p, context, errors, csp } = await page(SHORT);
  await p.goto('/sign-in');
  await p.getByRole('button', { name: 'Continue as bob' }).click();
  await p.waitForURL(DASHBOARD);
  assert.equal(await p.getByTestId('plan').textContent(), 'Free');
  // The 1-second token expires (and the 5 seconds of clock leeway the server allows pass).
  await p.waitForTimeout(7000);

  const resp = await p.goto('/dashboard');
  const chain = [];
  for (let r = resp.request(); r; r = r.redirectedFrom()) {
    const u = new URL(r.url());
    chain.unshift(`${u.pathname}${u.searchParams.has('__clerk_handshake') ? ' (handshake token)' : ''}`);
  }
  assert.deepEqual(chain, ['/dashboard', '/demo/v1/client/handshake', '/dashboard (handshake token)', '/dashboard'],
    'the handshake round trip');
  assert.equal(resp.status(), 200);
  // The HTML the server rendered first is already signed in.
  const html = await resp.text();
  assert.match(html, /user_demo_bob/);
  assert.match(html, /data-testid="plan"[^>]*>Free</);
  // And nothing reloads it afterwards.
  let navigations = 0;
  p.on('framenavigated', (f) => { if (f === p.mainFrame()) navigations++; });
  await p.waitForTimeout(1500);
  assert.equal(navigations, 0, 'no reload after the first render');
  assert.equal(await p.getByTestId('plan').textContent(), 'Free');
  await p.screenshot({ path: join(shots, 'dashboard-after-handshake.png'), fullPage: true });
  assert.deepEqual(errors, []);
  assert.deepEqual(csp, []);
  await context.close();
});

test('the demo operator finds a payer, cancels at period end, and sees the audit row', async () => {
  // A payer: bob subscribes to Pro.
  const payer = await page(DEMO);
  await payer.p.goto('/sign-in');
  await payer.p.getByRole('button', { name: 'Continue as bob' }).click();
  await payer.p.waitForURL(DASHBOARD);
  await payer.p.goto('/pricing');
  await payer.p.getByTestId('subscribe-pro').click();
  await payer.p.waitForURL(DASHBOARD);
  assert.equal(await payer.p.getByTestId('plan').textContent(), 'Pro');
  // bob is no operator: the console is a plain 404 for him.
  assert.equal((await payer.p.goto('/admin')).status(), 404);
  await payer.p.getByText('Page not found').waitFor();

  const { p, context, errors, csp } = await page(DEMO);
  await p.goto('/sign-in');
  await p.getByRole('button', { name: 'Continue as operator' }).click();
  await p.waitForURL(DASHBOARD);
  assert.equal((await p.goto('/admin')).status(), 200);
  await p.getByLabel('Find a payer by user id, organization id or email').fill('bob@demo.plangate.test');
  await p.getByRole('button', { name: 'Find' }).click();
  await p.getByTestId('found').waitFor();
  await p.screenshot({ path: join(shots, 'admin-find.png'), fullPage: true });
  await axe(p, 'console /admin');
  await p.getByRole('link', { name: /user_demo_bob/ }).click();
  await p.waitForURL('**/admin/payers/user/user_demo_bob');
  const item = p.getByTestId('item').filter({ hasText: 'Pro' });
  assert.match(await item.textContent(), /active/);
  await p.screenshot({ path: join(shots, 'admin-payer.png'), fullPage: true });
  await axe(p, 'console payer page');

  await item.getByRole('button', { name: 'Cancel at period end' }).click();
  await p.waitForURL('**/admin/payers/user/user_demo_bob?done=1');
  assert.match(await p.getByTestId('notice').textContent(), /cancel item:csub_item_\w+: done/);
  // The demo's Clerk answered with signed webhooks: the stored item is canceled, access stays.
  assert.match(await p.getByTestId('item').filter({ hasText: 'Pro' }).textContent(), /canceled/);
  await p.screenshot({ path: join(shots, 'admin-canceled.png'), fullPage: true });

  await p.getByRole('link', { name: 'Audit log' }).first().click();
  await p.waitForURL('**/admin/audit');
  const row = p.getByTestId('audit-row').first();
  assert.match(await row.textContent(), /user_demo_operator.*cancel.*item:csub_item_\w+.*end_now=false.*done/);
  await p.screenshot({ path: join(shots, 'admin-audit.png'), fullPage: true });
  await axe(p, 'console audit log');

  // On a phone the console's pages fit the screen: wide tables scroll inside their box.
  await p.setViewportSize({ width: 390, height: 844 });
  for (const path of ['/admin', '/admin/payers/user/user_demo_bob', '/admin/audit', '/admin/dead-letters']) {
    await p.goto(path);
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${path} is ${width}px wide at 390`);
  }
  await p.goto('/admin/payers/user/user_demo_bob');
  await p.screenshot({ path: join(shots, 'admin-payer-phone.png'), fullPage: true });

  await payer.p.goto('/dashboard');
  await payer.p.getByTestId('canceled-banner').waitFor();
  assert.deepEqual(errors, []);
  assert.deepEqual(csp, [], 'the console runs under the CSP');
  assert.deepEqual(payer.errors, []);
  await context.close();
  await payer.context.close();
});

test('a demo API key: made on /dashboard/api-keys, shown once, calls the metered API as curl would, revoked', async () => {
  const { p, context, errors, csp } = await page(DEMO);
  await p.goto('/sign-in');
  await p.locator('#demo-name').fill('keys');
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  await p.waitForURL(DASHBOARD);
  await p.goto('/pricing');
  await p.getByTestId('subscribe-starter').click();
  await p.waitForURL(DASHBOARD);
  await p.getByTestId('api-keys-link').click();
  await p.waitForURL(/\/dashboard\/api-keys$/);
  await p.getByTestId('no-keys').waitFor();
  await check(p, 'api keys, none yet');
  await p.locator('#key-name').fill('My server');
  await p.getByTestId('create-key').click();
  await p.waitForURL(/\/dashboard\/api-keys\?created=/);
  const secret = (await p.getByTestId('new-secret').textContent()).trim();
  assert.match(secret, /^ak_demo_[0-9a-f]{48}$/);
  assert.match(await p.getByTestId('curl').textContent(), new RegExp(`Bearer ${secret}`));
  await check(p, 'api keys, a new key shown once');
  await p.screenshot({ path: join(shots, 'api-key-created.png'), fullPage: true });

  // A program with the key (no cookie, no browser): the owner's plan, metered.
  for (let i = 1; i <= 3; i++) {
    const r = await fetch(`${DEMO}/api/premium-feature`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('ratelimit-remaining'), String(20 - i));
  }
  const probe = await (await fetch(`${DEMO}/api/gates/premium`, { headers: { authorization: `Bearer ${secret}` } })).json();
  assert.equal(probe.allowed, true);
  assert.equal(probe.usage.used, 3, 'the probe spends nothing');
  // The dashboard's meter shows what the key spent.
  await p.goto('/dashboard');
  assert.equal(await p.getByTestId('meter-premium_api').getByTestId('meter-used').textContent(), '3');

  // Shown once: the page no longer has it; revoke it.
  await p.goto('/dashboard/api-keys');
  assert.equal(await p.getByTestId('new-secret').count(), 0);
  assert.doesNotMatch(await p.content(), new RegExp(secret));
  await p.getByTestId('revoke-key').click();
  await p.waitForURL(/\/dashboard\/api-keys\?revoked=1$/);
  await p.getByText(/Revoked on/).waitFor();
  await p.screenshot({ path: join(shots, 'api-key-revoked.png'), fullPage: true });
  assert.deepEqual(errors, []);
  assert.deepEqual(csp, []);
  await context.close();
});
