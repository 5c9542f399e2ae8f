#!/usr/bin/env bash
# Builds the hydrate (wasm32) half and assembles target/site the way cargo-leptos does, with
# plain cargo + wasm-bindgen, so CI and machines without cargo-leptos build identically.
#   scripts/build-site.sh            debug
#   scripts/build-site.sh --release  release (wasm-opt if available)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug; cargo_profile=()
if [[ "${1:-}" == "--release" ]]; then profile=wasm-release; cargo_profile=(--profile wasm-release); fi

site=target/site
mkdir -p "$site/pkg"
export LEPTOS_OUTPUT_NAME=plangate

if rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  cargo build --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
    --target-dir target/front "${cargo_profile[@]}"
else
  # Offline route (see scripts/setup-offline-wasm.sh): Debian's rustc-web builds std for wasm32.
  PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld \
    /usr/bin/cargo build --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
      -Zbuild-std=std,panic_abort --target-dir target/front "${cargo_profile[@]}"
fi

wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name plangate \
  "target/front/wasm32-unknown-unknown/$profile/plangate.wasm"
# Leptos' hydration script loads <output-name>.wasm, as cargo-leptos names it.
mv "$site/pkg/plangate_bg.wasm" "$site/pkg/plangate.wasm"
if [[ "$profile" != debug ]] && command -v wasm-opt >/dev/null; then
  wasm-opt -Oz "$site/pkg/plangate.wasm" -o "$site/pkg/plangate.wasm"
fi
cp style/main.css "$site/pkg/plangate.css"
cp -r public/. "$site/"
echo "site built in $site ($profile)"
