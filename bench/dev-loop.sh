#!/usr/bin/env bash
# Edit-to-served times of the development loop (README command 1, `scripts/dev.sh`, which ends
# in `cargo leptos watch`; BENCHMARKS.md "Dev loop").
# Starts the watcher, then ROUNDS times: changes a sentence of the home page and waits until
# GET / serves it; changes style/main.css and waits until the stylesheet served has it. Every
# edit is undone on exit. Prints one line per edit, in seconds.
#   bench/dev-loop.sh            DEV_LOOP_ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${DEV_LOOP_ROUNDS:-3}
URL=http://127.0.0.1:3000
PAGE=src/pages/home.rs CSS=style/main.css
SENTENCE='Only ids, plan, status and periods are stored.'
cp "$PAGE" /tmp/dev-loop-page.bak; cp "$CSS" /tmp/dev-loop-css.bak
log=$(mktemp /tmp/dev-loop.XXXXXX.log)
restore() {
  cp /tmp/dev-loop-page.bak "$PAGE"; cp /tmp/dev-loop-css.bak "$CSS"
  [[ -n "${WATCH:-}" ]] && kill -- -"$WATCH" 2>/dev/null || true
}
trap restore EXIT
now() { date +%s.%N; }
wait_for() {  # url text: seconds until url serves text
  local t0=$1 url=$2 text=$3
  for _ in $(seq 6000); do
    curl -sf "$url" 2>/dev/null | grep -qF -- "$text" && { awk "BEGIN {printf \"%.2f\", $(now) - $t0}"; return; }
    sleep 0.05
  done
  echo "timeout"; return 1
}
t0=$(now)
set -m; scripts/dev.sh >"$log" 2>&1 & WATCH=$!; set +m
echo "first page served after $(wait_for "$t0" "$URL/" "$SENTENCE") s (log: $log)"
sleep 2
for i in $(seq "$ROUNDS"); do
  marker="Stored: ids, plan, status, periods (edit $i $RANDOM)."
  sed -i "s|$SENTENCE|$marker|" "$PAGE"; t0=$(now)
  echo "page text edit $i: $(wait_for "$t0" "$URL/" "$marker") s"
  cp /tmp/dev-loop-page.bak "$PAGE"; t0=$(now)
  echo "page text undo $i: $(wait_for "$t0" "$URL/" "$SENTENCE") s"
  sleep 2
  css=".dev-loop-$i-$RANDOM { color: red; }"
  echo "$css" >>"$CSS"; t0=$(now)
  echo "css edit $i: $(wait_for "$t0" "$URL/pkg/plangate.css" "${css%% *}") s"
  cp /tmp/dev-loop-css.bak "$CSS"
  sleep 2
done
