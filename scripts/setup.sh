#!/usr/bin/env bash
# Development set-up: the wasm32 toolchain (rustup or the offline route), wasm-bindgen, and
# cargo-leptos (installed once; it takes a while on 2 cores). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-offline-wasm.sh
if [[ "${SKIP_CARGO_LEPTOS:-0}" != 1 ]] && ! cargo leptos --version >/dev/null 2>&1; then
  echo "installing cargo-leptos (once; about 25 minutes on 2 cores)"
  if cargo install cargo-leptos --locked 2>/dev/null; then :; else
    # cargo-leptos needs cargo >= 1.96; Debian's rustc-web cargo has it where rustup's is older.
    PATH="/usr/bin:$PATH" /usr/bin/cargo install cargo-leptos --locked --root "$HOME/.cargo" ||
      echo "cargo-leptos could not be installed; scripts/dev.sh falls back to plain cargo"
  fi
fi
[[ -f .env ]] || cp .env.example .env
echo "ready: run 'cargo leptos watch' and open http://127.0.0.1:3000"
