//! `deploy/local-cluster.sh` driven from a test: redis-server, gateway processes and nginx with
//! `deploy/nginx.conf`, on free loopback ports, in a temp dir. Stopped on drop (`down`, then
//! every pid `status` named, so nothing outlives a failed test).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;

use super::gateway::Endpoint;

pub struct LocalCluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    pub lb: Endpoint,
    pub instances: usize,
    base_port: u16,
    pids: parking_lot::Mutex<Vec<u32>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port `p` with `p+1..=p+n` free.
fn free_run(n: usize) -> u16 {
    loop {
        let p = free_port();
        if p as usize + n > 65_000 {
            continue;
        }
        let all = (1..=n as u16).all(|i| TcpListener::bind(("127.0.0.1", p + i)).is_ok());
        if all {
            return p;
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/local-cluster.sh")
}

impl LocalCluster {
    /// `local-cluster.sh up` with `instances` gateways (the test build's binary) and `env`
    /// for each of them; returns once every instance answers through nginx.
    pub async fn up(instances: usize, env: &[(&str, &str)]) -> LocalCluster {
        let dir = tempfile::tempdir().unwrap();
        let lb_port = free_port();
        let base_port = free_run(instances);
        let mut all: Vec<(String, String)> = vec![
            ("LB_PORT".into(), lb_port.to_string()),
            ("REDIS_PORT".into(), free_port().to_string()),
            ("GATEWAY_BASE_PORT".into(), base_port.to_string()),
            ("INSTANCES".into(), instances.to_string()),
            ("CLUSTER_DIR".into(), dir.path().to_string_lossy().into()),
            (
                "AFW_GATEWAY_BIN".into(),
                env!("CARGO_BIN_EXE_afw-gateway").into(),
            ),
            ("RUST_LOG".into(), "warn".into()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let c = LocalCluster {
            dir,
            env: all,
            lb: Endpoint::new(SocketAddr::from(([127, 0, 0, 1], lb_port))),
            instances,
            base_port,
            pids: Default::default(),
        };
        let out = c.run(&["up"]).await;
        assert!(out.0, "local-cluster.sh up failed:\n{}", out.1);
        c.remember_pids().await;
        c
    }

    async fn run(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("run deploy/local-cluster.sh");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `status` as (role, pid, port) lines.
    pub async fn status(&self) -> Vec<(String, Option<u32>, u16)> {
        let (_, text) = self.run(&["status"]).await;
        text.lines()
            .filter_map(|l| {
                let (role, rest) = l.split_once(" pid ")?;
                let mut it = rest.split_whitespace();
                let pid = it.next()?.parse().ok();
                let port = it.nth(1)?.parse().ok()?;
                Some((role.to_string(), pid, port))
            })
            .collect()
    }

    async fn remember_pids(&self) {
        let pids: Vec<u32> = self
            .status()
            .await
            .into_iter()
            .filter_map(|(_, p, _)| p)
            .collect();
        let mut known = self.pids.lock();
        for p in pids {
            if !known.contains(&p) {
                known.push(p);
            }
        }
    }

    /// Gateway `n`'s pid (1-based), if it runs.
    pub async fn gateway_pid(&self, n: usize) -> Option<u32> {
        let role = format!("gateway {n}");
        self.status()
            .await
            .into_iter()
            .find(|(r, _, _)| *r == role)
            .and_then(|(_, p, _)| p)
    }

    /// Gateway `n` straight, past nginx.
    pub fn gateway(&self, n: usize) -> Endpoint {
        Endpoint::new(SocketAddr::from((
            [127, 0, 0, 1],
            self.base_port + n as u16,
        )))
    }

    pub async fn kill9(&self, n: usize) {
        let pid = self.gateway_pid(n).await.expect("the gateway runs");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    /// SIGTERM gateway `n` and wait until it has drained and exited (`stop N`).
    pub async fn stop(&self, n: usize) {
        let out = self.run(&["stop", &n.to_string()]).await;
        assert!(out.0, "stop {n}: {}", out.1);
    }

    /// Starts gateway `n` again on its port (`start N`), ready when this returns.
    pub async fn start(&self, n: usize) {
        let out = self.run(&["start", &n.to_string()]).await;
        assert!(out.0, "start {n}: {}", out.1);
        self.remember_pids().await;
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output();
        for &p in self.pids.lock().iter() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
