#!/usr/bin/env bash
# Development set-up: the wasm32 toolchain (rustup or the offline route), wasm-bindgen, and
# cargo-leptos 0.3.11 (installed once, scripts/install-cargo-leptos.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-offline-wasm.sh
if [[ "${SKIP_CARGO_LEPTOS:-0}" != 1 ]] && ! cargo leptos --version >/dev/null 2>&1; then
  echo "installing cargo-leptos 0.3.11 (once; about 12 minutes on 2 cores)"
  scripts/install-cargo-leptos.sh ||
    echo "cargo-leptos could not be installed; scripts/dev.sh falls back to plain cargo"
fi
# mold, the faster linker the development build uses when it is there (optional).
if ! command -v mold >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mold >/dev/null 2>&1 || true
fi
[[ -f .env ]] || cp .env.example .env
echo "ready: run 'cargo leptos watch' and open http://127.0.0.1:3000"
