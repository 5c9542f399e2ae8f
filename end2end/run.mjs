// Starts the real server twice (demo mode on a fresh database, and with a Clerk test key), then
// runs the browser tests with node's test runner against them. Screenshots go to
// end2end/screenshots/.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'target/debug/plangate');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function start(name, env) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), `plangate-e2e-${name}-`));
  const child = spawn(bin, ['serve'], {
    cwd: root,
    env: { PATH: process.env.PATH, RUST_LOG: 'warn', LEPTOS_SITE_ADDR: `127.0.0.1:${port}`, METRICS_ADDR: 'off',
      APP_URL: `http://127.0.0.1:${port}`, DATA_DIR: data, DATABASE_URL: `sqlite://${data}/e2e.db`, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`${url}/readyz`)).ok) return { url, child, data }; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`${name} server did not become ready`);
}

const demo = await start('demo', {});
// Demo mode with 1-second session tokens: the handshake test lets one expire.
const short = await start('short', { DEMO_SESSION_TTL_SECS: '1' });
const clerk = await start('clerk', {
  CLERK_PUBLISHABLE_KEY: 'pk_test_' + Buffer.from('e2e-test-1.clerk.accounts.dev$').toString('base64'),
  CLERK_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  CLERK_JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json',
});
process.env.DEMO_URL = demo.url;
process.env.SHORT_URL = short.url;
process.env.CLERK_URL = clerk.url;

const test = spawn(process.execPath, ['--test', '--test-concurrency=1', join(root, 'end2end/tests')], {
  stdio: 'inherit', env: process.env,
});
const code = await new Promise((r) => test.on('exit', r));
for (const s of [demo, short, clerk]) {
  s.child.kill();
  rmSync(s.data, { recursive: true, force: true });
}
process.exit(code ?? 1);
