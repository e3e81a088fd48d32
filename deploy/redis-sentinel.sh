#!/usr/bin/env bash
# Redis under Sentinel from plain redis-server processes on loopback (no Docker), as the
# tests start it: a primary, two replicas and three sentinels (quorum 2, a primary is down
# after 1 s), for trying the gateway's Sentinel mode by hand.
#
#   deploy/redis-sentinel.sh up       # start all six; prints the gateway's settings
#   deploy/redis-sentinel.sh status   # one line per process: role, pid, port
#   deploy/redis-sentinel.sh primary  # the port the sentinels name as primary
#   deploy/redis-sentinel.sh down     # stop exactly what `up` started
#
# Settings (environment): SENTINEL_DIR (pids, logs, configs; a temp dir by default,
# remembered for the other commands), REDIS_BASE_PORT (6390: the data nodes on 6390-6392),
# SENTINEL_BASE_PORT (26390: the sentinels on 26390-26392), SENTINEL_MASTER (afw),
# AFW_REDIS_SERVER (the redis-server binary; redis-cli is taken from beside it, else PATH).
# redis-server is installed with apt-get when missing.
set -euo pipefail
REDIS_BASE_PORT=${REDIS_BASE_PORT:-6390}
SENTINEL_BASE_PORT=${SENTINEL_BASE_PORT:-26390}
MASTER=${SENTINEL_MASTER:-afw}
POINTER="${TMPDIR:-/tmp}/afw-redis-sentinel-$REDIS_BASE_PORT.dir"
SERVER=${AFW_REDIS_SERVER:-redis-server}
CLI=redis-cli
[ -x "$(dirname "$SERVER")/redis-cli" ] && [ "$SERVER" != redis-server ] && CLI="$(dirname "$SERVER")/redis-cli"

say() { echo "redis-sentinel: $*" >&2; }
die() { say "$*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
need() {
  command -v "$SERVER" >/dev/null 2>&1 && command -v "$CLI" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1; then
    say "redis-server is missing; installing it with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null || true
  fi
  command -v "$SERVER" >/dev/null 2>&1 && command -v "$CLI" >/dev/null 2>&1 \
    || die "redis-server and redis-cli are required: install the redis-server package"
}
set_dir() {
  if [ -n "${SENTINEL_DIR:-}" ]; then echo "$SENTINEL_DIR"
  elif [ -f "$POINTER" ]; then cat "$POINTER"
  else echo ""; fi
}
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$1" ] && cat "$1" || true; }
ping() { "$CLI" -p "$1" ping >/dev/null 2>&1; }
wait_ping() { for _ in $(seq 100); do ping "$1" && return 0; sleep 0.1; done; die "port $1 never answered"; }
primary() { # the primary's port, as the first sentinel that answers names it
  for i in 0 1 2; do
    local a; a=$("$CLI" -p $((SENTINEL_BASE_PORT + i)) sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | tail -1)
    [ -n "$a" ] && { echo "$a"; return 0; }
  done
  return 1
}

up() {
  need
  local dir; dir=$(set_dir); [ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/afw-redis-sentinel.XXXXXX")
  mkdir -p "$dir"; echo "$dir" >"$POINTER"
  for i in 0 1 2; do
    local port=$((REDIS_BASE_PORT + i)) extra=()
    alive "$(pid_of "$dir/redis-$i.pid")" && continue
    [ "$i" -gt 0 ] && extra=(--replicaof 127.0.0.1 "$REDIS_BASE_PORT")
    "$SERVER" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
      --dbfilename "dump-$port.rdb" --daemonize no "${extra[@]}" >"$dir/redis-$i.log" 2>&1 &
    echo $! >"$dir/redis-$i.pid"
    wait_ping "$port"
  done
  for i in 1 2; do # the replicas in sync, so that writes waiting for one are answered
    for _ in $(seq 100); do
      "$CLI" -p $((REDIS_BASE_PORT + i)) info replication 2>/dev/null | grep -q 'master_link_status:up' && break
      sleep 0.1
    done
  done
  for i in 0 1 2; do
    local port=$((SENTINEL_BASE_PORT + i))
    alive "$(pid_of "$dir/sentinel-$i.pid")" && continue
    cat >"$dir/sentinel-$i.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir
sentinel monitor $MASTER 127.0.0.1 $REDIS_BASE_PORT 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 10000
sentinel parallel-syncs $MASTER 2
CONF
    "$SERVER" "$dir/sentinel-$i.conf" --sentinel >"$dir/sentinel-$i.log" 2>&1 &
    echo $! >"$dir/sentinel-$i.pid"
    wait_ping "$port"
  done
  for _ in $(seq 100); do primary >/dev/null && break; sleep 0.1; done
  say "up in $dir; primary on port $(primary)"
  local list=""
  for i in 0 1 2; do list="$list${list:+,}127.0.0.1:$((SENTINEL_BASE_PORT + i))"; done
  echo "REDIS_SENTINELS=$list REDIS_SENTINEL_MASTER=$MASTER"
}

status() {
  local dir; dir=$(set_dir); [ -n "$dir" ] || die "nothing is up"
  for i in 0 1 2; do
    local pid; pid=$(pid_of "$dir/redis-$i.pid")
    echo "redis-$i pid ${pid:-none} port $((REDIS_BASE_PORT + i)) $(alive "$pid" && echo up || echo down)"
  done
  for i in 0 1 2; do
    local pid; pid=$(pid_of "$dir/sentinel-$i.pid")
    echo "sentinel-$i pid ${pid:-none} port $((SENTINEL_BASE_PORT + i)) $(alive "$pid" && echo up || echo down)"
  done
}

down() {
  local dir; dir=$(set_dir); [ -n "$dir" ] || { say "nothing is up"; return 0; }
  for f in "$dir"/sentinel-*.pid "$dir"/redis-*.pid; do
    [ -f "$f" ] || continue
    local pid; pid=$(cat "$f")
    alive "$pid" && kill "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  rm -f "$POINTER"
  say "down"
}

case "${1:-}" in
  up) up ;;
  status) status ;;
  primary) primary ;;
  down) down ;;
  *) die "usage: $0 up|status|primary|down" ;;
esac
