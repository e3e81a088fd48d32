# afw-gateway: a multi-stage build. The first stage compiles the dependencies alone (a layer
# that survives source edits), then the gateway; the runtime image holds only the binary, curl
# for the health check, and a non-root user.
#
#   docker build -t afw-gateway .
#   docker run --rm -p 3001:3001 -e AFW_API_KEYS=change-me afw-gateway
#
# HOST is 0.0.0.0 in the image so the port can be published. The gateway refuses to listen on
# a non-loopback address without credentials: give AFW_API_KEYS (or, on a network you trust
# alone, AFW_INSECURE=1), or it exits at start naming HOST.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first: the manifests with stand-in sources, so this layer is rebuilt only when
# Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY loadgen/Cargo.toml loadgen/Cargo.toml
RUN mkdir -p src loadgen/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > loadgen/src/main.rs \
 && cargo build --release --locked -p afw-gateway \
 && rm -rf src loadgen/src target/release/.fingerprint/afw-gateway-* target/release/deps/afw_gateway-* target/release/deps/libafw_gateway-*
COPY src src
COPY web-demo web-demo
COPY loadgen/src loadgen/src
RUN cargo build --release --locked -p afw-gateway

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin afw
COPY --from=build /src/target/release/afw-gateway /usr/local/bin/afw-gateway
USER 10001:10001
ENV HOST=0.0.0.0 \
    PORT=3001 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 3001
# SIGTERM: the gateway stops accepting, closes every WebSocket with 1001 (clients reconnect
# elsewhere at once), finishes in-flight requests and exits within SHUTDOWN_TIMEOUT_SECS.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:3001/health >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/afw-gateway"]
