#!/usr/bin/env bash
# Installs what the hydrate (wasm32) build needs. On a normal machine that is
# `rustup target add wasm32-unknown-unknown`; where the rustup server cannot be reached, Debian's
# rustc-web builds std for wasm32 from source (see scripts/build-site.sh). Also installs the
# wasm-bindgen CLI pinned to the version in Cargo.lock. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  if ! timeout 60 rustup target add wasm32-unknown-unknown 2>/dev/null; then
    echo "rustup cannot add wasm32: using Debian's rustc-web to build std from source"
    if [[ ! -x /usr/lib/llvm-22/bin/wasm-ld || ! -d /usr/lib/rustlib/src/rust/library ]]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web rust-web-src libstd-rust-web-dev lld-22
    fi
  fi
fi

want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [[ "$have" != "$want" ]]; then
  # No --locked: its lock pins a crate version the registry mirror may lack.
  cargo install wasm-bindgen-cli --version "$want"
fi
