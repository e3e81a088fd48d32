#!/usr/bin/env bash
# The dashboard under a firehose (BENCHMARKS.md, "The dashboard"): builds the release gateway,
# then runs tests/web/firehose.bench.mjs in headless Chromium. RATE and SECONDS change the load.
# Needs what scripts/test.sh installs (Node >= 20, Chromium, tests/web/node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p afw-gateway
mkdir -p target/browser
[ -d tests/web/node_modules/playwright-core ] || (cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
flags=()
if ! node -e 'WebSocket' >/dev/null 2>&1; then flags=(--experimental-websocket); fi
AFW_GATEWAY_BIN="$PWD/target/release/afw-gateway" node "${flags[@]}" tests/web/firehose.bench.mjs
