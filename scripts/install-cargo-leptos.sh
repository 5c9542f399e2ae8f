#!/usr/bin/env bash
# Installs cargo-leptos 0.3.11 on Rust 1.95. Its published lockfile pins cargo-util-schemas
# 0.14.2, which needs rustc 1.96, and an unlocked resolve picks crates that need 1.97. So the
# published source is built with that one crate stepped down to 0.14.1 (rust-version 1.94) and
# every other version as cargo-leptos locked them. cargo-leptos uses the wasm-bindgen on PATH
# (scripts/setup.sh installs the one Cargo.lock names), so nothing is downloaded from GitHub.
# About 12 minutes on 2 cores, once.
set -euo pipefail
VERSION=0.3.11
if cargo leptos --version 2>/dev/null | grep -q "$VERSION"; then exit 0; fi
if cargo install cargo-leptos --locked --version "$VERSION" 2>/dev/null; then exit 0; fi
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cargo-leptos-"$VERSION" 2>/dev/null | head -1)
if [[ -z "$src" ]]; then
  echo "cargo-leptos $VERSION: source not downloaded" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/cargo-leptos"
cd "$work/cargo-leptos"
cargo update -q -p cargo-util-schemas --precise 0.14.1
cargo install --path . --locked
