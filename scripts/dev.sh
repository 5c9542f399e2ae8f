#!/usr/bin/env bash
# README command 1: set up what is missing, then `cargo leptos watch` (http://127.0.0.1:3000).
# Where rustup cannot add wasm32, the build uses Debian's rustc-web with std built from source;
# the unstable switches it needs are set here, for this command only, never in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  exec cargo leptos watch "$@"
fi
export PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
exec cargo leptos watch "$@"
