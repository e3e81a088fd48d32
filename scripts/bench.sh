#!/usr/bin/env bash
# Reruns every row of BENCHMARKS.md on this machine, side by side in one run:
#   - nginx answering a constant (the HTTP ceiling here),
#   - the gateway on its memory store (one instance),
#   - the gateway on Redis with persistence on (AOF, fsync every second): one and three instances.
# Results go to bench-results/<scenario>-<setup>.json and a summary table to stdout.
# Installs nginx and redis-server with apt-get when missing. Traffic stays on loopback.
#
# Knobs (environment): DURATION (s, default 10), IDLE_CONNECTIONS (default 18000; the
# machine's open-file hard limit caps it), FANOUT_SUBSCRIBERS (1000), FANOUT_SESSIONS (10),
# FANOUT_RATE (events/s, default 1000), INGEST_CONNECTIONS (32, also the clients of the
# locks, jobs and cache rows), ONLY (space-separated row groups to run: ingest services
# lb fanout highrate idle; default all: lb is ingest and fan-out through deploy/nginx.conf
# beside the same three Redis instances straight; highrate is HIGHRATE_SUBSCRIBERS (50) on one
# session at HIGHRATE_RATE (4000) events/s, for each WS_WRITE_COALESCE_MS in COALESCE_DELAYS
# ("0 1 2 5 10")), PEERS=1 (also sockudo, the Rust Pusher-protocol server, built once into
# target/peers with `cargo install`: a long first build, never in CI).
#
# The fanout and highrate groups run `afw-loadgen limit-server` beside the gateway: the least
# a server must do for the same scenario (a pre-built frame per event, one write per
# subscriber, or every queued frame in one writev), the floor the gateway is measured against.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-18000}
FANOUT_SUBSCRIBERS=${FANOUT_SUBSCRIBERS:-1000}
FANOUT_SESSIONS=${FANOUT_SESSIONS:-10}
FANOUT_RATE=${FANOUT_RATE:-1000}
INGEST_CONNECTIONS=${INGEST_CONNECTIONS:-32}
ONLY=${ONLY:-ingest services lb fanout highrate idle}
HIGHRATE_SUBSCRIBERS=${HIGHRATE_SUBSCRIBERS:-50}
HIGHRATE_RATE=${HIGHRATE_RATE:-4000}
COALESCE_DELAYS=${COALESCE_DELAYS:-0 1 2 5 10}
PEERS=${PEERS:-0}
wants() { [[ " $ONLY " == *" $1 "* ]]; }
OUT=bench-results
mkdir -p "$OUT"

say() { echo "bench.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
need() {
  local bin=$1 pkg=$2
  command -v "$bin" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1; then
    say "$bin is missing; installing $pkg with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null || true
  fi
  command -v "$bin" >/dev/null 2>&1 || { say "$bin is required: install $pkg"; exit 1; }
}
need nginx nginx
need redis-server redis-server
need python3 python3

cargo build --release --workspace --bins >&2
GW=target/release/afw-gateway
LG=target/release/afw-loadgen
SOCKUDO=target/peers/sockudo/bin/sockudo
if [ "$PEERS" = 1 ] && [ ! -x "$SOCKUDO" ]; then
  # sockudo's build runs protoc (metrics-exporter-tcp); its Redis adapter is a feature.
  need protoc protobuf-compiler
  say "building sockudo 5.2.0 into target/peers (once; it takes a while)"
  CARGO_TARGET_DIR=target/peers/build cargo install sockudo --version 5.2.0 --features redis \
    --locked --root target/peers/sockudo >&2
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; say "$1 never answered"; exit 1; }

# Both print "pid port"; they run in a subshell, so the caller records the pid in PIDS.
start_gateway() { # args: env assignments
  local port; port=$(free_port)
  env PORT="$port" LOG_FORMAT=json RUST_LOG=warn "$@" "$GW" >"$TMP/gw-$port.log" 2>&1 &
  local pid=$!
  wait_http "http://127.0.0.1:$port/ready"
  echo "$pid $port"
}

start_redis() { # prints "pid port"
  local port; port=$(free_port)
  mkdir -p "$TMP/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$TMP/redis-$port" --save "" \
    --appendonly yes --appendfsync everysec >"$TMP/redis-$port.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$pid $port"
}

stop() { for p in "$@"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; }
# sockudo drains for a while after SIGTERM, and its port and memory with it.
stop_hard() { stop "$@"; for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done; }

start_limit() { # args: limit-server options; prints "pid port"
  local port; port=$(free_port)
  "$LG" limit-server --listen "127.0.0.1:$port" "$@" >"$TMP/limit-$port.log" 2>&1 &
  local pid=$!
  wait_http "http://127.0.0.1:$port/ready"
  echo "$pid $port"
}

# sockudo with one app (id afw, key afw-key, secret afw-secret), its limits off; args: env.
start_sockudo() {
  local port; port=$(free_port)
  env HOST=127.0.0.1 PORT="$port" METRICS_ENABLED=false RATE_LIMITER_ENABLED=false \
    SOCKUDO_DEFAULT_APP_ID=afw SOCKUDO_DEFAULT_APP_KEY=afw-key SOCKUDO_DEFAULT_APP_SECRET=afw-secret \
    SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=10000000 \
    SOCKUDO_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SECOND=10000000 APP_MANAGER_DRIVER=memory \
    CACHE_DRIVER=memory QUEUE_DRIVER=memory RATE_LIMITER_DRIVER=memory LOG_LEVEL=warn "$@" \
    "$SOCKUDO" >"$TMP/sockudo-$port.log" 2>&1 &
  local pid=$!
  wait_http "http://127.0.0.1:$port/up/afw"
  echo "$pid $port"
}
PUSHER=(--transport pusher --pusher-app afw:afw-key:afw-secret)

run() { # name, loadgen args...
  local name=$1; shift
  say "$name: afw-loadgen $*"
  "$LG" "$@" --json >"$OUT/$name.json" 2>"$OUT/$name.log" || say "$name reported a failure (see $OUT/$name.json)"
}

# nginx answering a constant to POST /api/events.
NGINX_PORT=$(free_port)
cat >"$TMP/nginx.conf" <<EOF
worker_processes auto;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { return 201 '{"success":true}'; }
  }
}
EOF
nginx -c "$TMP/nginx.conf" -p "$TMP"
wait_http "http://127.0.0.1:$NGINX_PORT/"
NGINX_MASTER=$(cat "$TMP/nginx.pid")
NGINX_PIDS=$(echo "$NGINX_MASTER" $(pgrep -P "$NGINX_MASTER") | tr ' ' ',')

# --- ingest, and the services beside it on the same instances ----------------------------
services() { # setup, port, pid
  wants services || return 0
  for kind in locks jobs workers cache; do
    run "$kind-$1" "$kind" --target "http://127.0.0.1:$2" --connections "$INGEST_CONNECTIONS" \
      --duration "$DURATION" --gateway-pid "$3"
  done
}
run ingest-nginx ingest --target "http://127.0.0.1:$NGINX_PORT" --connections "$INGEST_CONNECTIONS" \
  --duration "$DURATION" --gateway-pid "$NGINX_PIDS"
read -r P1 PORT1 < <(start_gateway); PIDS+=("$P1")
run ingest-memory ingest --target "http://127.0.0.1:$PORT1" --connections "$INGEST_CONNECTIONS" \
  --duration "$DURATION" --gateway-pid "$P1"
services memory "$PORT1" "$P1"
stop "$P1"
if [ "$PEERS" = 1 ] && wants ingest; then
  read -r S1 SPORT < <(start_sockudo); PIDS+=("$S1")
  run ingest-sockudo ingest --target "http://127.0.0.1:$SPORT" --connections "$INGEST_CONNECTIONS" \
    --duration "$DURATION" "${PUSHER[@]}" --gateway-pid "$S1"
  stop_hard "$S1"
fi
read -r RP RPORT < <(start_redis); PIDS+=("$RP")
read -r P1 PORT1 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P1")
# Redis's own CPU over the run (/proc ticks) and its commands (INFO commandstats), for the
# ingest table's per-event costs.
redis_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis-cli -p "$RPORT" config resetstat >/dev/null
T0=$(redis_ticks "$RP")
run ingest-redis-1 ingest --target "http://127.0.0.1:$PORT1" --connections "$INGEST_CONNECTIONS" \
  --duration "$DURATION" --gateway-pid "$P1"
echo "$(($(redis_ticks "$RP") - T0)) $(getconf CLK_TCK)" >"$OUT/ingest-redis-1.redis-ticks"
redis-cli -p "$RPORT" info commandstats >"$OUT/ingest-redis-1.commandstats"
services redis-1 "$PORT1" "$P1"
read -r P2 PORT2 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P2")
read -r P3 PORT3 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P3")
run ingest-redis-3 ingest --target "http://127.0.0.1:$PORT1,http://127.0.0.1:$PORT2,http://127.0.0.1:$PORT3" \
  --connections "$INGEST_CONNECTIONS" --duration "$DURATION" --gateway-pid "$P1,$P2,$P3"

# --- through nginx (deploy/nginx.conf) in front of the same three instances --------------
if wants lb; then
  LB_PORT=$(free_port); mkdir -p "$TMP/lb"
  cp deploy/nginx.conf "$TMP/lb/nginx.conf"
  for p in "$PORT1" "$PORT2" "$PORT3"; do echo "server 127.0.0.1:$p max_fails=3 fail_timeout=2s;"; done >"$TMP/lb/afw-upstreams.conf"
  echo "listen 127.0.0.1:$LB_PORT;" >"$TMP/lb/afw-listen.conf"
  nginx -p "$TMP/lb" -c nginx.conf
  wait_http "http://127.0.0.1:$LB_PORT/health"
  LB_MASTER=$(cat "$TMP/lb/nginx.pid")
  LB_PIDS=$(echo "$LB_MASTER" $(pgrep -P "$LB_MASTER") | tr ' ' ',')
  LBFAN=(--connections "$FANOUT_SUBSCRIBERS" --sessions "$FANOUT_SESSIONS" --rate "$FANOUT_RATE" --duration "$DURATION")
  # Server CPU is the gateways' plus nginx's through nginx, the gateways' alone straight.
  run ingest-lb ingest --target "http://127.0.0.1:$LB_PORT" --connections "$INGEST_CONNECTIONS" \
    --duration "$DURATION" --gateway-pid "$P1,$P2,$P3,$LB_PIDS"
  run ingest-direct ingest --target "http://127.0.0.1:$PORT1,http://127.0.0.1:$PORT2,http://127.0.0.1:$PORT3" \
    --connections "$INGEST_CONNECTIONS" --duration "$DURATION" --gateway-pid "$P1,$P2,$P3"
  run fanout-lb fanout --target "http://127.0.0.1:$LB_PORT" "${LBFAN[@]}" --gateway-pid "$P1,$P2,$P3,$LB_PIDS"
  run fanout-direct fanout --target "http://127.0.0.1:$PORT1,http://127.0.0.1:$PORT2,http://127.0.0.1:$PORT3" \
    "${LBFAN[@]}" --gateway-pid "$P1,$P2,$P3"
  kill "$LB_MASTER" 2>/dev/null || true
fi

# --- fanout -------------------------------------------------------------------------------
if wants fanout; then
FAN=(--connections "$FANOUT_SUBSCRIBERS" --sessions "$FANOUT_SESSIONS" --rate "$FANOUT_RATE" --duration "$DURATION")
run fanout-redis-3 fanout --target "http://127.0.0.1:$PORT1,http://127.0.0.1:$PORT2,http://127.0.0.1:$PORT3" \
  "${FAN[@]}" --gateway-pid "$P1,$P2,$P3"
stop "$P2" "$P3"
run fanout-redis-1 fanout --target "http://127.0.0.1:$PORT1" "${FAN[@]}" --gateway-pid "$P1"
stop "$P1" "$RP"
read -r P1 PORT1 < <(start_gateway); PIDS+=("$P1")
run fanout-memory fanout --target "http://127.0.0.1:$PORT1" "${FAN[@]}" --gateway-pid "$P1"
stop "$P1"
read -r L1 LPORT < <(start_limit); PIDS+=("$L1")
run fanout-limit fanout --target "http://127.0.0.1:$LPORT" "${FAN[@]}" --gateway-pid "$L1"
stop "$L1"
read -r L1 LPORT < <(start_limit --coalesce); PIDS+=("$L1")
run fanout-limit-coalesced fanout --target "http://127.0.0.1:$LPORT" "${FAN[@]}" --gateway-pid "$L1"
stop "$L1"
if [ "$PEERS" = 1 ]; then
  read -r S1 SPORT < <(start_sockudo); PIDS+=("$S1")
  run fanout-sockudo fanout --target "http://127.0.0.1:$SPORT" "${FAN[@]}" "${PUSHER[@]}" --gateway-pid "$S1"
  stop_hard "$S1"
  read -r RP RPORT < <(start_redis); PIDS+=("$RP")
  # Its Redis adapter wants its cache on Redis too.
  read -r S1 SPORT < <(start_sockudo ADAPTER_DRIVER=redis CACHE_DRIVER=redis REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$S1")
  run fanout-sockudo-redis fanout --target "http://127.0.0.1:$SPORT" "${FAN[@]}" "${PUSHER[@]}" --gateway-pid "$S1"
  stop_hard "$S1"; stop "$RP"
fi
fi

# --- high-rate fan-out: each WS_WRITE_COALESCE_MS, beside the limit server's writev -------
if wants highrate; then
HR=(--connections "$HIGHRATE_SUBSCRIBERS" --sessions 1 --rate "$HIGHRATE_RATE" --duration "$DURATION" --publishers 1)
read -r L1 LPORT < <(start_limit); PIDS+=("$L1")
run highrate-limit fanout --target "http://127.0.0.1:$LPORT" "${HR[@]}" --gateway-pid "$L1"
stop "$L1"
for d in $COALESCE_DELAYS; do
  read -r P1 PORT1 < <(start_gateway WS_WRITE_COALESCE_MS="$d"); PIDS+=("$P1")
  run "highrate-memory-$d" fanout --target "http://127.0.0.1:$PORT1" "${HR[@]}" --gateway-pid "$P1"
  stop "$P1"
  read -r L1 LPORT < <(start_limit --coalesce --write-delay-ms "$d"); PIDS+=("$L1")
  run "highrate-limit-$d" fanout --target "http://127.0.0.1:$LPORT" "${HR[@]}" --gateway-pid "$L1"
  stop "$L1"
done
if [ "$PEERS" = 1 ]; then
  read -r S1 SPORT < <(start_sockudo); PIDS+=("$S1")
  run highrate-sockudo fanout --target "http://127.0.0.1:$SPORT" "${HR[@]}" "${PUSHER[@]}" --gateway-pid "$S1"
  stop_hard "$S1"
fi
fi

# --- idle (fresh instances, so memory freed by earlier runs does not flatter them) --------
stop "${PIDS[@]}"
if wants idle; then
read -r P1 PORT1 < <(start_gateway); PIDS+=("$P1")
run idle-memory idle --target "http://127.0.0.1:$PORT1" --connections "$IDLE_CONNECTIONS" \
  --sessions 1000 --duration 5 --gateway-pid "$P1"
stop "$P1"
read -r RP RPORT < <(start_redis); PIDS+=("$RP")
read -r P1 PORT1 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P1")
run idle-redis-1 idle --target "http://127.0.0.1:$PORT1" --connections "$IDLE_CONNECTIONS" \
  --sessions 1000 --duration 5 --gateway-pid "$P1"
stop "$P1"
read -r P1 PORT1 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P1")
read -r P2 PORT2 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P2")
read -r P3 PORT3 < <(start_gateway REDIS_URL="redis://127.0.0.1:$RPORT"); PIDS+=("$P3")
run idle-redis-3 idle --target "http://127.0.0.1:$PORT1,http://127.0.0.1:$PORT2,http://127.0.0.1:$PORT3" \
  --connections "$IDLE_CONNECTIONS" --sessions 1000 --duration 5 --gateway-pid "$P1,$P2,$P3"
stop "$P1" "$P2" "$P3" "$RP"
if [ "$PEERS" = 1 ]; then
  read -r S1 SPORT < <(start_sockudo); PIDS+=("$S1")
  run idle-sockudo idle --target "http://127.0.0.1:$SPORT" --connections "$IDLE_CONNECTIONS" \
    --sessions 1000 --duration 5 "${PUSHER[@]}" --gateway-pid "$S1"
  stop_hard "$S1"
fi
fi

ONLY="$ONLY" PEERS="$PEERS" COALESCE_DELAYS="$COALESCE_DELAYS" python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
# Only what this run measured: files of groups it skipped, or of the peers in a run without
# them, may be left from older runs.
groups = os.environ["ONLY"].split()
def load(name):
    if "sockudo" in name and os.environ["PEERS"] != "1":
        return None
    group = "services" if name.split("-")[0] in ("locks", "jobs", "workers", "cache") else name.split("-")[0]
    if name.endswith("-lb") or name.endswith("-direct"):
        group = "lb"
    if group not in groups:
        return None
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except Exception:
        return None
def f(v, nd=0):
    return "n/a" if v is None else (f"{v:,.{nd}f}")
print(f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB")
print()
print("| ingest | events/s | vs nginx | p50 ms | p99 ms | server CPU s | loadgen CPU s | errors |")
print("|---|---|---|---|---|---|---|---|")
ng = load("ingest-nginx")
for name in ["ingest-nginx", "ingest-memory", "ingest-sockudo", "ingest-redis-1", "ingest-redis-3"]:
    r = load(name)
    if not r: continue
    ratio = r["eventsPerSec"] / ng["eventsPerSec"] if ng else None
    print(f"| {name[7:]} | {f(r['eventsPerSec'])} | {f(ratio * 100 if ratio else None, 1)}% | {r['latency']['p50Ms']} | {r['latency']['p99Ms']} | {f(r['costs']['gatewayCpuSecs'], 1)} | {f(r['costs']['loadgenCpuSecs'], 1)} | {r['errors']} |")
print()
# Where an event's CPU goes on one Redis instance: the gateway's, Redis's, and Redis's script
# calls (several requests' events share one call: the group commit, docs/redis.md).
r1 = load("ingest-redis-1")
ticks = os.path.join(out, "ingest-redis-1.redis-ticks")
if r1 and r1["requests"] and os.path.exists(ticks):
    t, hz = map(int, open(ticks).read().split())
    calls = 0
    for line in open(os.path.join(out, "ingest-redis-1.commandstats")):
        if line.startswith("cmdstat_evalsha:"):
            calls = int(line.split("calls=")[1].split(",")[0])
    n = r1["requests"]
    print("| redis-1, per event | gateway CPU µs | redis-server CPU µs | loadgen CPU µs | events per script call |")
    print("|---|---|---|---|---|")
    print(f"| ingest | {f(r1['costs']['gatewayCpuSecs'] / n * 1e6, 1)} | {f(t / hz / n * 1e6, 1)} | {f(r1['costs']['loadgenCpuSecs'] / n * 1e6, 1)} | {f(n / calls if calls else None, 1)} |")
    print()
ing = {n: load("ingest-" + n) for n in ["memory", "redis-1"]}
if "services" in groups:
  print("| service | cycles/s | vs ingest (same store) | vs nginx | latency of | p50 ms | p99 ms | gateway CPU µs per cycle | errors |")
  print("|---|---|---|---|---|---|---|---|---|")
for kind in ["locks", "jobs", "workers", "cache"]:
    for setup in ["memory", "redis-1"]:
        r = load(f"{kind}-{setup}")
        if not r: continue
        i = ing.get(setup)
        vs = r["cyclesPerSec"] / i["eventsPerSec"] * 100 if i else None
        vn = r["cyclesPerSec"] / ng["eventsPerSec"] * 100 if ng else None
        l = r["latency"]
        print(f"| {kind}, {setup} | {f(r['cyclesPerSec'])} | {f(vs, 1)}% | {f(vn, 1)}% | {r['latencyOf']} | {l['p50Ms']} | {l['p99Ms']} | {f(r['gatewayCpuMicrosPerCycle'])} | {r['errors']} |")
print()
if "lb" in groups:
  print("| three Redis instances | events/s or deliveries/s | p50 ms | p99 ms | server CPU s | server CPU µs per event or delivery | errors or lost/dup/reordered |")
  print("|---|---|---|---|---|---|---|")
  for name in ["ingest-direct", "ingest-lb", "fanout-direct", "fanout-lb"]:
    r = load(name)
    if not r: continue
    l = r["latency"]
    cpu = r["costs"]["gatewayCpuSecs"]
    if name.startswith("ingest"):
      n, rate, bad = r["stored"], r["eventsPerSec"], str(r["errors"])
    else:
      n, rate, bad = r["deliveriesReceived"], r["deliveriesPerSec"], f"{r['lost']} / {r['duplicated']} / {r['reordered']}"
    per = cpu * 1e6 / n if cpu and n else None
    how = "through nginx" if name.endswith("-lb") else "straight"
    print(f"| {name.split('-')[0]}, {how} | {f(rate)} | {l['p50Ms']} | {l['p99Ms']} | {f(cpu, 1)} | {f(per, 1)} | {bad} |")
  print()
def per_cpu(r):
    return r.get("deliveriesPerGatewayCpuSec") if r else None
def times(a, b):
    # CPU per delivery of `a` as a multiple of `b`'s: b's deliveries per CPU-s over a's.
    x, y = per_cpu(a), per_cpu(b)
    return f"{y / x:.2f}x" if x and y else "n/a"
if "fanout" in groups:
  print("| fanout | events/s | deliveries/s | deliveries per server CPU-s | CPU per delivery vs limit server | lost / dup / reordered | p50 ms | p99 ms | p999 ms | max ms | server CPU s | loadgen CPU s |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
limit = load("fanout-limit")
for name in ["fanout-limit", "fanout-limit-coalesced", "fanout-memory", "fanout-sockudo", "fanout-redis-1", "fanout-sockudo-redis", "fanout-redis-3"]:
    r = load(name)
    if not r: continue
    l = r["latency"]
    print(f"| {name[7:]} | {f(r['eventsPerSec'])} | {f(r['deliveriesPerSec'])} | {f(r['deliveriesPerGatewayCpuSec'])} | {times(r, limit)} | {r['lost']} / {r['duplicated']} / {r['reordered']} | {l['p50Ms']} | {l['p99Ms']} | {l['p999Ms']} | {l['maxMs']} | {f(r['costs']['gatewayCpuSecs'], 1)} | {f(r['costs']['loadgenCpuSecs'], 1)} |")
print()
if "highrate" in groups:
  print("| high-rate fan-out, write delay | events/s | gateway deliveries per CPU-s | p50 ms | p99 ms | lost / dup / reordered | limit server (writev) deliveries per CPU-s | its p99 ms | gateway CPU per delivery vs limit |")
  print("|---|---|---|---|---|---|---|---|---|")
  for d in os.environ.get("COALESCE_DELAYS", "0 1 2 5 10").split():
    g, l = load(f"highrate-memory-{d}"), load(f"highrate-limit-{d}")
    if not g: continue
    gl = g["latency"]
    print(f"| {d} ms | {f(g['eventsPerSec'])} | {f(per_cpu(g))} | {gl['p50Ms']} | {gl['p99Ms']} | {g['lost']} / {g['duplicated']} / {g['reordered']} | {f(per_cpu(l))} | {l['latency']['p99Ms'] if l else 'n/a'} | {times(g, l)} |")
  for name, what in [("highrate-limit", "limit server, one write per frame"), ("highrate-sockudo", "sockudo")]:
    r = load(name)
    if r:
      print(f"| {what} | {f(r['eventsPerSec'])} | {f(per_cpu(r))} | {r['latency']['p50Ms']} | {r['latency']['p99Ms']} | {r['lost']} / {r['duplicated']} / {r['reordered']} | | | |")
  print()
if "idle" in groups:
  print("| idle | connections held | failures | gateway RSS before | held | per connection |")
  print("|---|---|---|---|---|---|")
for name in ["idle-memory", "idle-sockudo", "idle-redis-1", "idle-redis-3"]:
    r = load(name)
    if not r: continue
    print(f"| {name[5:]} | {r['connectionsHeld']:,} | {r['failures']} | {f(r['gatewayRssBeforeBytes'] / 2**20, 1)} MiB | {f(r['gatewayRssHeldBytes'] / 2**20, 1)} MiB | {f(r['gatewayRssPerConnectionBytes'])} B |")
EOF
