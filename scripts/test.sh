#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (redis-server, nginx,
# Node.js, Chromium and promtool via apt-get where available; playwright-core, typescript, Claude Code's
# Agent SDK and AG-UI's client from the npm registry; the deployment validators and the MCP SDK
# from PyPI into target/pyvenv), then runs `cargo test` and the JavaScript tests (afw-client.js
# in Node, the dashboard in headless Chromium, the hook fixtures against the SDK's types, the
# AG-UI stream through @ag-ui/client) with the Redis and
# browser tests required: if either cannot run, the suite fails; it never skips them.
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

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  say "installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Node.js 20 or newer runs the client's unit tests and drives the browser.
ensure_node() {
  local major=0
  if command -v node >/dev/null 2>&1; then major=$(node -p 'process.versions.node.split(".")[0]'); fi
  if [ "$major" -lt 20 ]; then
    apt_install nodejs npm || true
    if command -v node >/dev/null 2>&1; then major=$(node -p 'process.versions.node.split(".")[0]'); fi
  fi
  if [ "$major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
    say "Node.js >= 20 with npm is required (found: $(node --version 2>/dev/null || echo none))."
    say "Install it (https://nodejs.org, or your package manager), then run scripts/test.sh again."
    exit 1
  fi
}

# Chromium for the browser tests: AFW_CHROMIUM, else one on the PATH, else Debian's package.
find_chromium() {
  if [ -n "${AFW_CHROMIUM:-}" ] && [ -x "$AFW_CHROMIUM" ]; then echo "$AFW_CHROMIUM"; return 0; fi
  local c
  for c in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}
ensure_chromium() {
  if ! find_chromium >/dev/null; then apt_install chromium || true; fi
  if ! AFW_CHROMIUM=$(find_chromium); then
    say "Chromium is required for the browser tests and could not be installed."
    say "Install it (Debian: apt-get install chromium; elsewhere any Chromium or Chrome build)"
    say "or set AFW_CHROMIUM=/path/to/chromium, then run scripts/test.sh again."
    exit 1
  fi
  export AFW_CHROMIUM
}

# nginx for the load-balancer tests (deploy/nginx.conf in front of gateway processes).
ensure_nginx() {
  command -v nginx >/dev/null 2>&1 || apt_install nginx || true
  command -v curl >/dev/null 2>&1 || apt_install curl || true
  if ! command -v nginx >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    say "nginx and curl are required for the load-balancer tests and could not be installed."
    say "Install them (Debian/Ubuntu: apt-get install nginx curl), then run scripts/test.sh again."
    exit 1
  fi
}

# promtool (Prometheus's own checker, in Debian's prometheus package) checks and unit-tests the
# alert rules of deploy/prometheus/ and lints what /metrics serves (tests/operations.rs).
ensure_promtool() {
  if [ -n "${AFW_PROMTOOL:-}" ] && [ -x "$AFW_PROMTOOL" ]; then return 0; fi
  command -v promtool >/dev/null 2>&1 || apt_install --no-install-recommends prometheus || true
  if ! command -v promtool >/dev/null 2>&1; then
    say "promtool is required for the alert rules' tests and could not be installed."
    say "Install it (Debian/Ubuntu: apt-get install prometheus; or a release from prometheus.io)"
    say "or set AFW_PROMTOOL=/path/to/promtool, then run scripts/test.sh again."
    exit 1
  fi
  AFW_PROMTOOL=$(command -v promtool)
  export AFW_PROMTOOL
}

# The deployment validators (the Compose schema's and Kubernetes' checkers) and the official MCP
# client SDK in a virtualenv of their own, pinned in tests/deploy/requirements.txt and
# tests/agents/requirements.txt; tests/deploy.rs and tests/mcp.rs run them via AFW_PYTHON.
ensure_validators() {
  local venv=target/pyvenv
  if ! "$venv/bin/python" -c 'import jsonschema, yaml, kubernetes_validate, mcp, openapi_spec_validator' >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || apt_install python3 || true
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv || true
      python3 -m venv "$venv" || { say "python3 with venv is required (apt-get install python3-venv)"; exit 1; }
    fi
    say "installing the deployment validators (jsonschema, PyYAML, kubernetes-validate), openapi-spec-validator and mcp with pip"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/deploy/requirements.txt \
      -r tests/agents/requirements.txt || {
      say "pip could not install tests/deploy/requirements.txt and tests/agents/requirements.txt; check the registry access"
      exit 1
    }
  fi
  AFW_PYTHON="$PWD/$venv/bin/python"
  export AFW_PYTHON
}

# playwright-core drives that Chromium (no browser download); Claude Code's Agent SDK and
# TypeScript check the hook fixtures against its types; @ag-ui/client, AG-UI's own client,
# follows the AG-UI stream. All pinned in tests/web's lockfile; the SDK's optional platform
# binaries (the Claude Code CLI itself) are not needed. @modelcontextprotocol/client and
# @modelcontextprotocol/ext-tasks, MCP's own TypeScript client, follow ask_human's task.
ensure_playwright() {
  local m=tests/web/node_modules
  if [ ! -d $m/playwright-core ] || [ ! -d $m/typescript ] || [ ! -d $m/@anthropic-ai/claude-agent-sdk ] \
    || [ ! -d $m/@ag-ui/client ] || [ ! -d $m/@modelcontextprotocol/ext-tasks ] \
    || [ ! -d $m/@modelcontextprotocol/client ]; then
    say "installing playwright-core, typescript, @anthropic-ai/claude-agent-sdk, @ag-ui/client and MCP's client and Tasks packages from the npm registry"
    (cd tests/web && npm ci --omit=optional --no-audit --no-fund --loglevel=error) || {
      say "npm could not install tests/web/package.json's packages; check the registry access"
      exit 1
    }
  fi
}

ensure_redis
ensure_nginx
ensure_promtool
ensure_validators
ensure_node
ensure_chromium
ensure_playwright
# The installed package may start a system Redis on 6379; the tests start their own servers
# on free ports and never use it.
say "using $(command -v redis-server 2>/dev/null || echo "$AFW_REDIS_SERVER") ($(${AFW_REDIS_SERVER:-redis-server} --version | awk '{print $3}'))"

# The code's own documentation: a broken intra-doc link fails the suite.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

# The load generator is a workspace member of its own; its tests in tests/loadgen.rs run its
# binary, so build it first (the test support builds it too when it is missing).
cargo build -p afw-loadgen
if [ $# -gt 0 ]; then
  cargo test --workspace --all-targets "$@"
else
  cargo test --workspace --lib --bins --tests -- --skip chaos_
  # The criterion benches once each, as tests (criterion's runner takes no --skip).
  cargo test -p afw-gateway --benches
  # The chaos test prints what it proved (delivered, lost, duplicated, reordered, resumes).
  cargo test --test chaos -- --nocapture
  # The hostile suites again with credentials required, as a tenant other than the default
  # one (the test support reads the key and sends it; see tests/support/gateway.rs).
  AFW_TEST_TENANT_KEY="hostile-run-$(date +%s%N)" cargo test --test hostile --test hostile_services
fi

if [ $# -gt 0 ]; then
  say "arguments given: ran those cargo tests only (the JavaScript tests run without arguments)"
  exit 0
fi

# The JavaScript tests run the debug gateway binary that cargo test built. Node 20 has a
# WebSocket only behind a flag; later versions have it built in.
cargo build -p afw-gateway
node_flags=()
if ! node -e 'WebSocket' >/dev/null 2>&1; then node_flags=(--experimental-websocket); fi
say "afw-client.js in Node, the dashboard (and its permission prompts) and EventSource in $AFW_CHROMIUM, Claude Code's hook fixtures and answers against its SDK, the AG-UI stream through @ag-ui/client, ask_human as an MCP task through @modelcontextprotocol/ext-tasks"
AFW_GATEWAY_BIN="$PWD/target/debug/afw-gateway" node "${node_flags[@]}" --test \
  tests/web/client.test.mjs tests/web/browser.test.mjs tests/web/origin.test.mjs \
  tests/web/claude-code.test.mjs tests/web/permissions.test.mjs tests/web/ag-ui.test.mjs \
  tests/web/eventsource.test.mjs tests/web/mcp-tasks.test.mjs
say "screenshots of what the browser tests saw: target/browser/"
