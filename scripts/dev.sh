#!/usr/bin/env bash
# README command 1: set up what is missing, then `cargo leptos watch` (http://127.0.0.1:3000).
# Where rustup cannot add wasm32, the build uses Debian's rustc-web with std built from source;
# the unstable switches it needs are set here, for this command only, never in Cargo.toml.
# Without cargo-leptos (its install failed, or SKIP_CARGO_LEPTOS=1) the same app is built with
# plain cargo + wasm-bindgen and run without live reload.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if cargo leptos --version >/dev/null 2>&1; then
  if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
    export PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
  fi
  # mold links the server in less time than the default linker. cargo-leptos' builds do not share
  # artifacts with plain cargo's (the LEPTOS_* environment differs), so this costs no sharing.
  if command -v mold >/dev/null; then
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$PWD/scripts/cc-mold"
  fi
  exec cargo leptos watch "$@"
fi
cat >&2 <<'MSG'
*** LIVE RELOAD IS OFF ***
cargo-leptos is not installed (scripts/install-cargo-leptos.sh installs it), so the app is
built with plain cargo + wasm-bindgen and run once: after an edit, stop it (Ctrl-C), run
scripts/dev.sh again and reload the browser yourself.
MSG
scripts/build-site.sh
exec cargo run --features ssr --bin plangate -- serve
