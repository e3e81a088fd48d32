#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (redis-server, via
# apt-get where available), then runs `cargo test` with the Redis tests required: if Redis
# cannot run, the suite fails; it never skips them.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test.sh: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

ensure_redis() {
  if [ -n "${AFW_REDIS_SERVER:-}" ] && [ -x "$AFW_REDIS_SERVER" ]; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then return 0; fi
  if command -v apt-get >/dev/null 2>&1; then
    say "redis-server is missing; installing it with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
      || { say "apt-get could not install redis-server"; }
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    say "redis-server is required and could not be installed."
    say "Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)"
    say "or set AFW_REDIS_SERVER=/path/to/redis-server, then run scripts/test.sh again."
    exit 1
  fi
}

ensure_redis
# The installed package may start a system Redis on 6379; the tests start their own servers
# on free ports and never use it.
say "using $(command -v redis-server 2>/dev/null || echo "$AFW_REDIS_SERVER") ($(${AFW_REDIS_SERVER:-redis-server} --version | awk '{print $3}'))"

# The load generator is a workspace member of its own; its tests in tests/loadgen.rs run its
# binary, so build it first (the test support builds it too when it is missing).
cargo build -p afw-loadgen
if [ $# -gt 0 ]; then
  cargo test --workspace --all-targets "$@"
else
  cargo test --workspace --all-targets -- --skip chaos_
  # The chaos test prints what it proved (delivered, lost, duplicated, reordered, resumes).
  cargo test --test chaos -- --nocapture
fi
