#!/usr/bin/env bash
# A Redis Cluster from plain redis-server processes on loopback (no Docker), as the tests
# start one: three masters holding even thirds of the slots and one replica each, for trying
# the gateway's Cluster mode by hand.
#
#   deploy/redis-cluster.sh up       # start all six, form the cluster; prints the gateway's settings
#   deploy/redis-cluster.sh status   # one line per node: pid, port, role, up or down
#   deploy/redis-cluster.sh nodes    # CLUSTER NODES as the first live node sees it
#   deploy/redis-cluster.sh down     # stop exactly what `up` started
#
# Settings (environment): CLUSTER_DIR (pids, logs, node files; a temp dir by default,
# remembered for the other commands), CLUSTER_BASE_PORT (7100: the nodes on 7100-7105, their
# cluster bus ports 10000 above), AFW_REDIS_SERVER (the redis-server binary; redis-cli is
# taken from beside it, else PATH). redis-server is installed with apt-get when missing.
set -euo pipefail
BASE=${CLUSTER_BASE_PORT:-7100}
MASTERS=3
NODES=6
POINTER="${TMPDIR:-/tmp}/afw-redis-cluster-$BASE.dir"
SERVER=${AFW_REDIS_SERVER:-redis-server}
CLI=redis-cli
[ -x "$(dirname "$SERVER")/redis-cli" ] && [ "$SERVER" != redis-server ] && CLI="$(dirname "$SERVER")/redis-cli"

say() { echo "redis-cluster: $*" >&2; }
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
  if [ -n "${CLUSTER_DIR:-}" ]; then echo "$CLUSTER_DIR"
  elif [ -f "$POINTER" ]; then cat "$POINTER"
  else echo ""; fi
}
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$1" ] && cat "$1" || true; }
cli() { "$CLI" -p "$@"; }
wait_for() { # seconds, what, command...
  local n=$(($1 * 10)) what=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "not $what after $((n / 10)) s"
}
knows_all() { [ "$(cli "$1" cluster nodes | wc -l)" -eq "$NODES" ]; }
cluster_ok() { cli "$1" cluster info | grep -q 'cluster_state:ok'; }
in_sync() { cli "$1" info replication | grep -q 'master_link_status:up'; }

up() {
  need
  local dir; dir=$(set_dir); [ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/afw-redis-cluster.XXXXXX")
  mkdir -p "$dir"; echo "$dir" >"$POINTER"
  local fresh=0
  for i in $(seq 0 $((NODES - 1))); do
    local port=$((BASE + i))
    alive "$(pid_of "$dir/node-$i.pid")" && continue
    [ -f "$dir/nodes-$port.conf" ] || fresh=1
    "$SERVER" --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 1000 \
      --save "" --appendonly no --dir "$dir" --daemonize no >"$dir/node-$i.log" 2>&1 &
    echo $! >"$dir/node-$i.pid"
    wait_for 10 "answering on $port" cli "$port" ping
  done
  if [ "$fresh" = 1 ]; then
    for i in $(seq 0 $((MASTERS - 1))); do
      cli $((BASE + i)) cluster addslotsrange $((i * 16384 / MASTERS)) $(((i + 1) * 16384 / MASTERS - 1)) >/dev/null
    done
    for i in $(seq 1 $((NODES - 1))); do cli "$BASE" cluster meet 127.0.0.1 $((BASE + i)) >/dev/null; done
    for i in $(seq 0 $((NODES - 1))); do wait_for 20 "a cluster of $NODES on $((BASE + i))" knows_all $((BASE + i)); done
    for i in $(seq "$MASTERS" $((NODES - 1))); do
      cli $((BASE + i)) cluster replicate "$(cli $((BASE + i - MASTERS)) cluster myid)" >/dev/null
    done
  fi
  for i in $(seq 0 $((NODES - 1))); do wait_for 30 "ok on $((BASE + i))" cluster_ok $((BASE + i)); done
  for i in $(seq "$MASTERS" $((NODES - 1))); do wait_for 30 "a replica in sync on $((BASE + i))" in_sync $((BASE + i)); done
  say "up in $dir"
  local list=""
  for i in $(seq 0 $((NODES - 1))); do list="$list${list:+,}127.0.0.1:$((BASE + i))"; done
  echo "REDIS_CLUSTER_NODES=$list"
}

status() {
  local dir; dir=$(set_dir); [ -n "$dir" ] || die "nothing is up"
  for i in $(seq 0 $((NODES - 1))); do
    local pid port=$((BASE + i)) role=""
    pid=$(pid_of "$dir/node-$i.pid")
    role=$(cli "$port" role 2>/dev/null | head -1 || true)
    echo "node-$i pid ${pid:-none} port $port ${role:-unknown} $(alive "$pid" && echo up || echo down)"
  done
}

nodes() {
  for i in $(seq 0 $((NODES - 1))); do
    cli $((BASE + i)) cluster nodes 2>/dev/null && return 0
  done
  die "no node answers"
}

down() {
  local dir; dir=$(set_dir); [ -n "$dir" ] || { say "nothing is up"; return 0; }
  for f in "$dir"/node-*.pid; do
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
  nodes) nodes ;;
  down) down ;;
  *) die "usage: $0 up|status|nodes|down" ;;
esac
