//! Simulated agents, so that there is something to watch in ten seconds:
//! `afw-gateway demo [--target URL] [--agents N]`, or the dashboard's button when the gateway
//! runs on its embedded store (`POST /api/demo`). They speak only the public HTTP API, as a
//! real agent's hooks do, so they run against any gateway.

use std::sync::Arc;

use clap::Parser;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

mod agent;
mod api;
mod script;

/// `afw-gateway demo`: simulated agents against a running gateway.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "afw-gateway demo",
    about = "Run simulated agents against a gateway"
)]
pub struct DemoArgs {
    /// The gateway to post to.
    #[arg(long, env = "AFW_DEMO_TARGET", default_value = "http://127.0.0.1:3001")]
    pub target: String,
    /// How many agents run at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub agents: u16,
    /// An API key, when the gateway has AFW_API_KEYS.
    #[arg(long, env = "AFW_API_KEY", hide_env_values = true)]
    pub token: Option<String>,
    /// Steps take their time divided by this (2 is twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

impl DemoArgs {
    pub fn validate(&self) -> Result<(), String> {
        if !self.target.starts_with("http://") {
            return Err(format!(
                "--target {}: the demo speaks plain http:// (run it beside the gateway, or behind a proxy that ends TLS)",
                self.target
            ));
        }
        if !(self.speed > 0.0 && self.speed <= 100.0) {
            return Err("--speed must be above 0 and at most 100".into());
        }
        Ok(())
    }
}

/// Runs the agents until `stop` is cancelled.
pub async fn run(args: DemoArgs, stop: CancellationToken) {
    let mut agents = tokio::task::JoinSet::new();
    for number in 1..=usize::from(args.agents) {
        let agent = agent::Agent {
            api: api::Api::new(&args.target, args.token.clone(), stop.clone()),
            number,
            speed: args.speed,
        };
        agents.spawn(agent.run());
    }
    while agents.join_next().await.is_some() {}
}

/// The in-process demo behind the dashboard's button: at most one run at a time.
#[derive(Default)]
pub struct DemoRunner {
    running: Mutex<Option<(CancellationToken, u16)>>,
}

impl DemoRunner {
    /// Starts `agents` agents against `target` unless a run is going; returns the count running.
    pub fn start(self: &Arc<Self>, args: DemoArgs, parent: &CancellationToken) -> u16 {
        let mut running = self.running.lock();
        if let Some((stop, n)) = running.as_ref() {
            if !stop.is_cancelled() {
                return *n;
            }
        }
        let stop = parent.child_token();
        let n = args.agents;
        *running = Some((stop.clone(), n));
        tokio::spawn(run(args, stop));
        n
    }

    pub fn stop(&self) {
        if let Some((stop, _)) = self.running.lock().take() {
            stop.cancel();
        }
    }

    /// How many agents are running (0: none).
    pub fn agents(&self) -> u16 {
        match self.running.lock().as_ref() {
            Some((stop, n)) if !stop.is_cancelled() => *n,
            _ => 0,
        }
    }
}
