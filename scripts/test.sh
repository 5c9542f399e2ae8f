#!/usr/bin/env bash
# Runs every test: unit + integration tests on SQLite, again on PostgreSQL when
# TEST_DATABASE_URL is set, then the browser tests against the started server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-offline-wasm.sh
scripts/build-site.sh
cargo build --features ssr --bin plangate
cargo test --features ssr --no-run
# Bounded, so a hung test fails the run instead of stalling it.
echo "== tests on SQLite"
env -u TEST_DATABASE_URL timeout 1200 cargo test --features ssr
if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
  echo "== integration tests on PostgreSQL"
  timeout 1200 cargo test --features ssr --test api
fi
echo "== browser tests"
(cd end2end && { [[ -d node_modules/playwright-core && -d node_modules/axe-core ]] || npm install --no-audit --no-fund; })
timeout 600 node end2end/run.mjs
