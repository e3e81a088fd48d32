#!/usr/bin/env bash
# The topology of docker-compose.multi.yml without Docker: redis-server, INSTANCES gateway
# processes and nginx in front of them (with deploy/nginx.conf, unchanged), all on loopback.
#
#   deploy/local-cluster.sh up        # start everything; returns once it all answers through nginx
#   deploy/local-cluster.sh status    # one line per process: role, pid, port
#   deploy/local-cluster.sh stop N    # SIGTERM gateway N and wait for it to drain and exit
#   deploy/local-cluster.sh start N   # start gateway N again (on its port)
#   deploy/local-cluster.sh down      # stop exactly what `up` started
#
# Settings (environment): LB_PORT (8080), INSTANCES (3), CLUSTER_DIR (pids, logs, data; a
# temp dir by default, remembered for the other commands), REDIS_PORT (6380),
# GATEWAY_BASE_PORT (3100: gateway N listens on GATEWAY_BASE_PORT + N), AFW_GATEWAY_BIN
# (target/release/afw-gateway, built when missing). The gateway's own variables
# (AFW_API_KEYS, SESSION_TTL_SECS, ...) pass through to every instance. nginx and
# redis-server are installed with apt-get when missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LB_PORT=${LB_PORT:-8080}
INSTANCES=${INSTANCES:-3}
REDIS_PORT=${REDIS_PORT:-6380}
GATEWAY_BASE_PORT=${GATEWAY_BASE_PORT:-3100}
GW=${AFW_GATEWAY_BIN:-$ROOT/target/release/afw-gateway}
POINTER="${TMPDIR:-/tmp}/afw-local-cluster-$LB_PORT.dir"

say() { echo "local-cluster: $*" >&2; }
die() { say "$*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
need() { # binary, apt package
  command -v "$1" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1; then
    say "$1 is missing; installing $2 with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || true
  fi
  command -v "$1" >/dev/null 2>&1 || die "$1 is required: install the $2 package"
}

cluster_dir() {
  if [ -n "${CLUSTER_DIR:-}" ]; then echo "$CLUSTER_DIR"
  elif [ -f "$POINTER" ]; then cat "$POINTER"
  else echo ""; fi
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$1" ] && cat "$1" || true; }
gateway_port() { echo $((GATEWAY_BASE_PORT + $1)); }

wait_http() { # url, tries of 100 ms
  for _ in $(seq "${2:-100}"); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

start_gateway() { # dir, n
  local dir=$1 n=$2 port; port=$(gateway_port "$2")
  if alive "$(pid_of "$dir/gateway-$n.pid")"; then say "gateway $n already runs"; return 0; fi
  env PORT="$port" HOST=127.0.0.1 REDIS_URL="redis://127.0.0.1:$REDIS_PORT" LOG_FORMAT="${LOG_FORMAT:-json}" \
    "$GW" >>"$dir/logs/gateway-$n.log" 2>&1 &
  echo $! >"$dir/gateway-$n.pid"
  wait_http "http://127.0.0.1:$port/ready" 150 || die "gateway $n did not become ready (see $dir/logs/gateway-$n.log)"
}

stop_pid() { # pidfile, seconds to wait before SIGKILL
  local pid; pid=$(pid_of "$1")
  alive "$pid" || { rm -f "$1"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $(( ${2:-15} * 10 ))); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$1"
}

cmd_up() {
  need nginx nginx
  need redis-server redis-server
  need curl curl
  if [ ! -x "$GW" ]; then
    say "building $GW"
    (cd "$ROOT" && cargo build --release -p afw-gateway >&2)
  fi
  local dir=${CLUSTER_DIR:-}
  if [ -z "$dir" ]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/afw-cluster.XXXXXX"); touch "$dir/.temporary"; fi
  mkdir -p "$dir/logs" "$dir/redis"
  echo "$dir" >"$POINTER"
  if ! alive "$(pid_of "$dir/redis.pid")"; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir/redis" --save "" \
      --appendonly yes --appendfsync everysec --daemonize no >>"$dir/logs/redis.log" 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis-server did not start (see $dir/logs/redis.log)"
  fi
  : >"$dir/afw-upstreams.conf"
  for n in $(seq 1 "$INSTANCES"); do
    start_gateway "$dir" "$n"
    echo "server 127.0.0.1:$(gateway_port "$n") max_fails=3 fail_timeout=2s;" >>"$dir/afw-upstreams.conf"
  done
  echo "listen 127.0.0.1:$LB_PORT;" >"$dir/afw-listen.conf"
  cp "$ROOT/deploy/nginx.conf" "$dir/nginx.conf"
  if ! alive "$(pid_of "$dir/nginx.pid")"; then
    nginx -p "$dir" -c nginx.conf 2>>"$dir/logs/nginx.log" || die "nginx did not start (see $dir/logs/nginx.log)"
    for _ in $(seq 50); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
  fi
  # Up means every instance answers through nginx.
  local seen="" tries=0
  while [ "$(echo "$seen" | wc -w)" -lt "$INSTANCES" ]; do
    tries=$((tries + 1)); [ "$tries" -le 200 ] || die "not every instance answers through nginx on $LB_PORT"
    local id; id=$(curl -sf "http://127.0.0.1:$LB_PORT/health" | sed -n 's/.*"instanceId":"\([^"]*\)".*/\1/p') || true
    if [ -n "$id" ]; then
      case " $seen " in *" $id "*) ;; *) seen="$seen $id" ;; esac
    fi
    sleep 0.05
  done
  say "up: http://127.0.0.1:$LB_PORT/ ($INSTANCES gateways, Redis on $REDIS_PORT, files in $dir)"
  cmd_status
}

cmd_status() {
  local dir; dir=$(cluster_dir)
  [ -n "$dir" ] && [ -d "$dir" ] || { say "no cluster (run up)"; return 1; }
  local ok=0 pid
  line() { # role, pidfile, port
    pid=$(pid_of "$2")
    if alive "$pid"; then echo "$1 pid $pid port $3"; else echo "$1 pid - port $3 (not running)"; ok=1; fi
  }
  line redis "$dir/redis.pid" "$REDIS_PORT"
  for f in "$dir"/gateway-*.pid; do
    [ -e "$f" ] || continue
    local n=${f##*/gateway-}; n=${n%.pid}
    line "gateway $n" "$f" "$(gateway_port "$n")"
  done
  line nginx "$dir/nginx.pid" "$LB_PORT"
  return $ok
}

cmd_stop_one() {
  local dir; dir=$(cluster_dir); [ -n "$dir" ] || die "no cluster (run up)"
  stop_pid "$dir/gateway-$1.pid" "${SHUTDOWN_WAIT_SECS:-20}"
  touch "$dir/gateway-$1.pid"
}

cmd_start_one() {
  local dir; dir=$(cluster_dir); [ -n "$dir" ] || die "no cluster (run up)"
  start_gateway "$dir" "$1"
}

cmd_down() {
  local dir; dir=$(cluster_dir)
  [ -n "$dir" ] && [ -d "$dir" ] || { say "no cluster"; rm -f "$POINTER"; return 0; }
  stop_pid "$dir/nginx.pid" 5
  for f in "$dir"/gateway-*.pid; do [ -e "$f" ] && stop_pid "$f" 20; done
  stop_pid "$dir/redis.pid" 10
  rm -f "$POINTER"
  if [ -f "$dir/.temporary" ]; then rm -rf "$dir"; fi
  say "down"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop) [ -n "${2:-}" ] || die "stop N"; cmd_stop_one "$2" ;;
  start) [ -n "${2:-}" ] || die "start N"; cmd_start_one "$2" ;;
  *) echo "usage: $0 up|down|status|stop N|start N" >&2; exit 64 ;;
esac
