#!/usr/bin/env bash
# Load and startup benchmarks (see BENCHMARKS.md). Builds the release binary, starts it on a
# fresh database, and drives each scenario with wrk at fixed concurrency, next to a bare axum
# handler as this machine's HTTP ceiling. Prints one table. Loopback only.
#   bench/run.sh            BENCH_SECONDS=10 BENCH_CONNECTIONS=32 BENCH_PG_URL=postgres://…/postgres
#                           BENCH_BIN=path/to/plangate BENCH_SKIP_BUILD=1 (A/B against another build)
#                           BENCH_PLANS=file (default bench/plans.toml; an older build may need
#                           one without `limits`)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECONDS:-10}
CONN=${BENCH_CONNECTIONS:-32}
THREADS=2
PG_ADMIN=${BENCH_PG_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
export BENCH_DIR="$PWD/bench"

command -v wrk >/dev/null && command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk sqlite3 >/dev/null; }
# BENCH_BIN: another build of the server to measure (an older commit's, for interleaved A/B runs).
[[ "${BENCH_SKIP_BUILD:-0}" == 1 ]] ||
  cargo build -q --release --features ssr,bench-tools --bin plangate --bin bare_axum --bin bench_tool
BIN=${BENCH_BIN:-target/release/plangate}
TOOL=target/release/bench_tool
work=$(mktemp -d /tmp/plangate-bench.XXXXXX)
PORT=3901 CEIL_PORT=3900
URL="http://127.0.0.1:$PORT"
SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
export BENCH_APP_URL=$URL BENCH_FAPI_HOST=bench.clerk.accounts.dev
$TOOL keys "$work"
TOKEN=$(cat "$work/token")
TOKEN_M=$(cat "$work/token_metered")
TOKEN_X=$(cat "$work/token_exhausted")
PLANS=${BENCH_PLANS:-$BENCH_DIR/plans.toml}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Clerk's API key verification (P1k), a stand-in on loopback.
BAPI_PORT=3903
$TOOL bapi "127.0.0.1:$BAPI_PORT" & BAPI=$!; pids+=("$BAPI")

serve_env() {  # $1 = database url
  exec env -i PATH="$PATH" RUST_LOG=warn DATABASE_URL="$1" DATA_DIR="$work/data" LEPTOS_SITE_ADDR="127.0.0.1:$PORT" \
    CLERK_SECRET_KEY=sk_test_benchstandinbackendkey0001 CLERK_API_URL="http://127.0.0.1:$BAPI_PORT" RECONCILE_INTERVAL_SECS=0 \
    APP_URL="$URL" CLERK_PUBLISHABLE_KEY="$(cat "$work/publishable_key")" CLERK_JWT_KEY="$(cat "$work/public.pem")" \
    CLERK_WEBHOOK_SECRET="$SECRET" LEPTOS_SITE_ROOT=target/site PLANS_FILE="$PLANS" "${@:2}"
}
start() {  # $1 = database url
  serve_env "$1" "$BIN" serve & SERVER=$!; pids+=("$SERVER")
  for _ in $(seq 300); do curl -sf "$URL/readyz" >/dev/null && return; sleep 0.05; done
  echo "server did not start"; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

declare -a ROWS
run_wrk() {  # name url script [args…]; WRK_CONN overrides the connections (one thread for 1)
  local name=$1 url=$2 script=$3; shift 3
  local conn=${WRK_CONN:-$CONN} threads=$THREADS
  (( conn < threads )) && threads=$conn
  local out; out=$(wrk -t$threads -c$conn -d${SECS}s --latency -s "$script" "$url" ${@:+-- "$@"} 2>&1 | grep '^RESULT' | tail -1)
  ROWS+=("$name|$out|$(rss "${SERVER_PID_FOR_RSS}")")
}

# Ceiling: bare axum.
target/release/bare_axum "127.0.0.1:$CEIL_PORT" & CEIL=$!; pids+=("$CEIL")
sleep 0.3
SERVER_PID_FOR_RSS=$CEIL
run_wrk "ceiling: bare axum GET /" "http://127.0.0.1:$CEIL_PORT/" bench/get.lua
kill "$CEIL"

# P5: process start to the first 200 on /readyz (fresh SQLite file, migrations included).
P5=$(serve_env "sqlite://$work/startup.db" "$TOOL" startup "$URL/readyz" "$BIN" serve)

# P1, P3 on SQLite.
start "sqlite://$work/bench.db"; SERVER_PID_FOR_RSS=$SERVER
BENCH_AUTH="Bearer $TOKEN" run_wrk "P1 GET /api/premium-feature" "$URL/api/premium-feature" bench/get.lua
# P1m: the same API for a payer with a limit (too large to reach): every 200 spends a unit.
BENCH_AUTH="Bearer $TOKEN_M" run_wrk "P1m GET /api/premium-feature" "$URL/api/premium-feature" bench/get.lua
# P1x: a payer at its limit (its one unit spent first): every answer is a 429, from memory.
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN_X" "$URL/api/premium-feature" || true
BENCH_AUTH="Bearer $TOKEN_X" run_wrk "P1x GET /api/premium-feature, refused" "$URL/api/premium-feature" bench/get.lua
# P1k: the same API called with an API key (its owner on Pro by webhook): the key's answer comes
# from the instance's memory (one verification per 10 s), the plan from the stored state.
$TOOL subscribe "$URL" "$SECRET" user_bench_key
BENCH_AUTH="Bearer ak_bench_key" run_wrk "P1k GET /api/premium-feature, API key" "$URL/api/premium-feature" bench/get.lua
P1K_VERIFICATIONS=$(curl -sf "http://127.0.0.1:$BAPI_PORT/count" || echo "?")
run_wrk "P3 GET /pricing" "$URL/pricing" bench/get.lua
BENCH_COOKIE="__session=$TOKEN" run_wrk "P3 GET /dashboard (signed in)" "$URL/dashboard" bench/get.lua
# Signed-in pages as a browser meets them: Bearer, at -c32 and on one kept-alive connection.
BENCH_AUTH="Bearer $TOKEN" run_wrk "P3 GET /dashboard, Bearer" "$URL/dashboard" bench/get.lua
BENCH_AUTH="Bearer $TOKEN" run_wrk "P3 GET /dashboard/payment-gated" "$URL/dashboard/payment-gated" bench/get.lua
BENCH_AUTH="Bearer $TOKEN" WRK_CONN=1 run_wrk "P3 GET /dashboard, -c1" "$URL/dashboard" bench/get.lua
BENCH_AUTH="Bearer $TOKEN" WRK_CONN=1 run_wrk "P3 GET /dashboard/payment-gated, -c1" "$URL/dashboard/payment-gated" bench/get.lua

# P2 on SQLite: every request a new event.
# Prepared deliveries: more than the server can take in SECS (wrk stops when they run out, so
# too few would cap the figure at N/SECS: 7,000/s did on a faster machine).
N=$(( ${BENCH_EVENTS_PER_SEC:-20000} * SECS ))
$TOOL webhooks "$work/hooks.tsv" "$N" "$SECRET"
run_wrk "P2 webhooks, SQLite" "$URL/" bench/webhooks.lua "$work/hooks.tsv" "$THREADS"
SQLITE_EVENTS=$(sqlite3 "$work/bench.db" "select count(*) from webhook_event" 2>/dev/null || echo "?")
P4=$(rss "$SERVER")
stop

# P2 on PostgreSQL, when one is reachable.
if command -v psql >/dev/null && psql "$PG_ADMIN" -qtc "select 1" >/dev/null 2>&1; then
  db="plangate_bench_$$"
  psql "$PG_ADMIN" -qc "create database $db" >/dev/null
  start "${PG_ADMIN%/*}/$db"; SERVER_PID_FOR_RSS=$SERVER
  $TOOL webhooks "$work/hooks.tsv" "$N" "$SECRET"
  run_wrk "P2 webhooks, PostgreSQL" "$URL/" bench/webhooks.lua "$work/hooks.tsv" "$THREADS"
  stop

  # P6: two instances on the same database (one public origin, two listen addresses), two wrk
  # processes splitting one file of deliveries between them; then the cross-instance
  # invalidation latency: a change through one, until the other's gated answer reflects it.
  PORT_B=3902
  psql "$PG_ADMIN" -qc "drop database $db" >/dev/null || true
  db="plangate_bench6_$$"
  psql "$PG_ADMIN" -qc "create database $db" >/dev/null
  start "${PG_ADMIN%/*}/$db"
  serve_env "${PG_ADMIN%/*}/$db" LEPTOS_SITE_ADDR="127.0.0.1:$PORT_B" METRICS_ADDR=off "$BIN" serve & B=$!; pids+=("$B")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT_B/readyz" >/dev/null && break; sleep 0.05; done
  $TOOL webhooks "$work/hooks6.tsv" "$N" "$SECRET"
  half=$(( CONN / 2 ))
  wrk -t1 -c$half -d${SECS}s --latency -s bench/webhooks.lua "$URL/" -- "$work/hooks6.tsv" 1 0 2 2>&1 | grep '^RESULT' | tail -1 > "$work/p6a" & WA=$!
  wrk -t1 -c$half -d${SECS}s --latency -s bench/webhooks.lua "http://127.0.0.1:$PORT_B/" -- "$work/hooks6.tsv" 1 1 2 2>&1 | grep '^RESULT' | tail -1 > "$work/p6b" & WB=$!
  wait "$WA" "$WB"
  P6_EVENTS=$(psql "${PG_ADMIN%/*}/$db" -qtAc "select count(*) from webhook_event")
  P6_A=$(cat "$work/p6a") P6_B=$(cat "$work/p6b")
  P6_INV=$($TOOL invalidation "$URL" "http://127.0.0.1:$PORT_B" "$SECRET" "$TOKEN" "${BENCH_CHANGES:-200}")
  # P1m on both instances at once: one payer's units reserved by two processes from one counter.
  BENCH_AUTH="Bearer $TOKEN_M" wrk -t1 -c$half -d${SECS}s --latency -s bench/get.lua "$URL/api/premium-feature" 2>&1 | grep '^RESULT' | tail -1 > "$work/p1ma" & WA=$!
  BENCH_AUTH="Bearer $TOKEN_M" wrk -t1 -c$half -d${SECS}s --latency -s bench/get.lua "http://127.0.0.1:$PORT_B/api/premium-feature" 2>&1 | grep '^RESULT' | tail -1 > "$work/p1mb" & WB=$!
  wait "$WA" "$WB"
  P1M_A=$(cat "$work/p1ma") P1M_B=$(cat "$work/p1mb")
  P1M_USED=$(psql "${PG_ADMIN%/*}/$db" -qtAc "select coalesce(sum(used), 0) from usage_counter where payer_id = 'user_bench_metered'" 2>/dev/null || echo "?")
  kill "$B"; wait "$B" 2>/dev/null || true
  stop
  psql "$PG_ADMIN" -qc "drop database $db" >/dev/null || true
else
  ROWS+=("P2 webhooks, PostgreSQL|RESULT skipped (no PostgreSQL at BENCH_PG_URL)|")
fi

ceil_rps=$(echo "${ROWS[0]}" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p')
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; wrk -t$THREADS -c$CONN -d${SECS}s; $(date -u +%F)"
printf "| %-34s | %9s | %8s | %8s | %7s | %8s | %8s |\n" scenario "req/s" "p50 ms" "p99 ms" non-2xx "RSS MB" "× ceil"
printf "|%s|\n" "------------------------------------|-----------|----------|----------|---------|----------|----------"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name res mem <<<"$row"
  rps=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$res"); p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$res")
  p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$res"); bad=$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$res")
  ratio=$([[ -n "$rps" && -n "$ceil_rps" ]] && awk "BEGIN {printf \"%.2f\", $rps/$ceil_rps}" || echo "-")
  printf "| %-34s | %9s | %8s | %8s | %7s | %8s | %8s |\n" "$name" "${rps:--}" "${p50:--}" "${p99:--}" "${bad:--}" "${mem:--}" "$ratio"
done
echo
echo "P1k Backend API key verifications during the scenario (at most one per 10 s): $P1K_VERIFICATIONS"
echo "P2 SQLite events stored: $SQLITE_EVENTS"
echo "P4 server RSS after all SQLite scenarios: ${P4} MB"
echo "P5 process start to first 200 on /readyz: ${P5} ms"
if [[ -n "${P6_A:-}" ]]; then
  rps() { sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$1"; }
  echo "P6 two instances on PostgreSQL, webhooks: $(awk "BEGIN {printf \"%.0f\", $(rps "$P6_A") + $(rps "$P6_B")}") events/s" \
    "(A: $(rps "$P6_A"), B: $(rps "$P6_B")); events stored: $P6_EVENTS"
  echo "P6 cross-instance invalidation (change through A until B's gated answer shows it): $P6_INV"
  nb() { sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$1"; }
  echo "P1m two instances on PostgreSQL: $(awk "BEGIN {printf \"%.0f\", $(rps "$P1M_A") + $(rps "$P1M_B")}") req/s" \
    "(A: $(rps "$P1M_A"), B: $(rps "$P1M_B")); non-2xx: $(nb "$P1M_A")+$(nb "$P1M_B"); units counted: $P1M_USED"
fi
