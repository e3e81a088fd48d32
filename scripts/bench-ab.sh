#!/usr/bin/env bash
# Two gateway builds side by side in one run, alternating A and B on each scenario, so a
# change (a restructure, an optimisation) is judged by ratios measured together on this noisy
# machine rather than against figures from another day. Odd rounds run A first, even rounds B
# first: whichever side runs second in a pair has measured 5-9% lower, so with an even ROUNDS
# that order effect cancels out of B / A.
#
#   scripts/bench-ab.sh A_BINARY B_BINARY      (e.g. a release build of the previous commit)
#
# Scenarios: ingest (memory store, then Redis with AOF), fanout (memory), highrate (memory: 50
# subscribers on one session at 4,000 events/s from one publisher, at WS_WRITE_COALESCE_MS =
# HIGHRATE_COALESCE_MS, default 10, as scripts/bench.sh's high-rate rows), idle (memory), and
# the services beside the stream: jobs (enqueue, claim, complete) and workers (bulks and
# completions that claim the next job) on both stores, cache hits on both.
# Knobs: DURATION (s, default 10), ROUNDS (default 2), IDLE_CONNECTIONS (default 18000),
# ONLY (the scenarios to run, space-separated; default all of them); A_ENV and B_ENV (more
# settings for each side's gateway, `VAR=value ...`) and A_KEY and B_KEY (the credential each
# side's load generator sends), so one binary can be measured against itself with a setting on
# and off:
#   B_ENV="AFW_JWT_SECRET=$S" B_KEY=$(AFW_JWT_SECRET=$S target/release/afw-gateway token \
#     --sub lg --role agent) scripts/bench-ab.sh target/release/afw-gateway target/release/afw-gateway
# A_TRANSPORT and B_TRANSPORT (ws or sse, default ws) say how each side's subscribers connect
# in fanout and idle, so one binary's SSE streams are measured beside its WebSockets:
#   A_TRANSPORT=ws B_TRANSPORT=sse ONLY="fanout-memory idle-memory" \
#     scripts/bench-ab.sh target/release/afw-gateway target/release/afw-gateway
# Traffic stays on loopback. Results go to bench-results/ab-*.json and a table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2
A_ENV=${A_ENV:-}; B_ENV=${B_ENV:-}; A_KEY=${A_KEY:-}; B_KEY=${B_KEY:-}
A_TRANSPORT=${A_TRANSPORT:-ws}; B_TRANSPORT=${B_TRANSPORT:-ws}
DURATION=${DURATION:-10}; ROUNDS=${ROUNDS:-2}; IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-18000}
ONLY=${ONLY:-ingest-memory ingest-redis fanout-memory highrate-memory idle-memory jobs-memory jobs-redis workers-memory workers-redis cache-memory cache-redis}
OUT=bench-results; mkdir -p "$OUT"
cargo build --release -p afw-loadgen >&2
LG=target/release/afw-loadgen
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "$1 never answered" >&2; exit 1; }
start() { # binary, env assignments...; prints "pid port"
  local bin=$1; shift; local port; port=$(free_port)
  env PORT="$port" LOG_FORMAT=json RUST_LOG=warn "$@" "$bin" >"$TMP/gw-$port.log" 2>&1 &
  local pid=$!; wait_http "http://127.0.0.1:$port/ready"; echo "$pid $port"
}
rport=$(free_port); mkdir -p "$TMP/redis"
redis-server --port "$rport" --bind 127.0.0.1 --dir "$TMP/redis" --save "" --appendonly yes \
  --appendfsync everysec >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
scenario() { # name, binary, env, loadgen args... (the side's SIDE_ENV and SIDE_KEY added)
  local name=$1 bin=$2 envs=$3; shift 3
  read -r pid port < <(start "$bin" $envs $SIDE_ENV)
  PIDS+=("$pid")
  echo "bench-ab.sh: $name: afw-loadgen $*" >&2
  "$LG" "$@" --target "http://127.0.0.1:$port" --gateway-pid "$pid" --json \
    ${SIDE_KEY:+--api-key "$SIDE_KEY"} >"$OUT/ab-$name.json"
  kill "$pid"; sleep 0.5
}
want() { [[ " $ONLY " == *" $1 "* ]]; }
for r in $(seq "$ROUNDS"); do
  order="A B"; if [ $((r % 2)) -eq 0 ]; then order="B A"; fi
  for side in $order; do
    bin=$A; SIDE_ENV=$A_ENV; SIDE_KEY=$A_KEY; T=$A_TRANSPORT
    if [ "$side" = B ]; then bin=$B; SIDE_ENV=$B_ENV; SIDE_KEY=$B_KEY; T=$B_TRANSPORT; fi
    want ingest-memory && scenario "ingest-memory-$side-$r" "$bin" "" ingest --connections 32 --duration "$DURATION"
    want ingest-redis && scenario "ingest-redis-$side-$r" "$bin" "REDIS_URL=redis://127.0.0.1:$rport" ingest --connections 32 --duration "$DURATION"
    redis-cli -p "$rport" flushall >/dev/null
    want fanout-memory && scenario "fanout-memory-$side-$r" "$bin" "" fanout --transport "$T" --connections 1000 --sessions 10 --rate 1000 --duration "$DURATION"
    want highrate-memory && scenario "highrate-memory-$side-$r" "$bin" "WS_WRITE_COALESCE_MS=${HIGHRATE_COALESCE_MS:-10}" fanout --transport "$T" --connections 50 --sessions 1 --rate 4000 --publishers 1 --duration "$DURATION"
    want idle-memory && scenario "idle-memory-$side-$r" "$bin" "" idle --transport "$T" --connections "$IDLE_CONNECTIONS" --sessions 1000 --duration 5
    for kind in jobs workers cache; do
      want "$kind-memory" && scenario "$kind-memory-$side-$r" "$bin" "" "$kind" --connections 32 --duration "$DURATION"
      want "$kind-redis" && scenario "$kind-redis-$side-$r" "$bin" "REDIS_URL=redis://127.0.0.1:$rport" "$kind" --connections 32 --duration "$DURATION"
      redis-cli -p "$rport" flushall >/dev/null
    done
  done
done
python3 - "$OUT" "$ROUNDS" "$ONLY" <<'PY'
import json, os, sys
out, rounds, only = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
def get(name): return json.load(open(f"{out}/ab-{name}.json"))
rows = [("ingest, memory: events/s", "ingest-memory", lambda r: r["eventsPerSec"]),
        ("ingest, Redis AOF: events/s", "ingest-redis", lambda r: r["eventsPerSec"]),
        ("fanout, memory: deliveries per gateway CPU-s", "fanout-memory", lambda r: r["deliveriesPerGatewayCpuSec"]),
        ("fanout, memory: p99 ms", "fanout-memory", lambda r: r["latency"]["p99Ms"]),
        ("highrate, memory: deliveries per gateway CPU-s", "highrate-memory", lambda r: r["deliveriesPerGatewayCpuSec"]),
        ("highrate, memory: p99 ms", "highrate-memory", lambda r: r["latency"]["p99Ms"]),
        ("idle, memory: bytes per connection", "idle-memory", lambda r: r["gatewayRssPerConnectionBytes"]),
        ("jobs, memory: cycles/s", "jobs-memory", lambda r: r["cyclesPerSec"]),
        ("jobs, memory: claim p50 µs", "jobs-memory", lambda r: r["latency"]["p50Ms"] * 1000),
        ("jobs, Redis AOF: cycles/s", "jobs-redis", lambda r: r["cyclesPerSec"]),
        ("jobs, Redis AOF: claim p50 µs", "jobs-redis", lambda r: r["latency"]["p50Ms"] * 1000),
        ("workers, memory: cycles/s", "workers-memory", lambda r: r["cyclesPerSec"]),
        ("workers, Redis AOF: cycles/s", "workers-redis", lambda r: r["cyclesPerSec"]),
        ("cache hits, memory: cycles/s", "cache-memory", lambda r: r["cyclesPerSec"]),
        ("cache hits, Redis AOF: cycles/s", "cache-redis", lambda r: r["cyclesPerSec"])]
print("| measure | " + " | ".join(f"A{r} | B{r}" for r in range(1, rounds + 1)) + " | B / A |")
print("|---|" + "---|" * (2 * rounds + 1))
for label, name, f in rows:
    # Only what this run measured: files of other scenarios may be left from an earlier run.
    if name not in only or not all(os.path.exists(f"{out}/ab-{name}-{s}-{r}.json") for s in "AB" for r in range(1, rounds + 1)):
        continue
    a = [f(get(f"{name}-A-{r}")) for r in range(1, rounds + 1)]
    b = [f(get(f"{name}-B-{r}")) for r in range(1, rounds + 1)]
    cells = " | ".join(f"{x:,.0f} | {y:,.0f}" if x > 100 else f"{x} | {y}" for x, y in zip(a, b))
    print(f"| {label} | {cells} | {sum(b) / sum(a):.3f} |")
PY
