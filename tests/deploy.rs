//! The deployment files, checked without Docker or a cluster: `docker-compose.multi.yml`
//! against the Compose Specification's schema (vendored in `deploy/schemas/`, from
//! github.com/compose-spec/compose-spec, Apache-2.0), the Kubernetes manifests with
//! `kubernetes-validate` (strict, so an unknown field fails), `deploy/nginx.conf` with
//! `nginx -t`; and each against the gateway itself: every variable they set is one the
//! gateway (or `afw-gateway demo`) reads, ports, probes and grace periods agree.
//! `scripts/test.sh` installs the validators in `target/pyvenv` and points `AFW_PYTHON` at it.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_names(cmd: clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// What the validator checks the files against, from the gateway's own definitions.
fn known(dir: &Path) -> PathBuf {
    let defaults = afw_gateway::Config::default();
    let mut gateway = env_names(afw_gateway::Config::command());
    // Read by the tracing subscriber rather than by clap.
    gateway.push("RUST_LOG".into());
    let known = serde_json::json!({
        "gateway": gateway,
        "demo": env_names(afw_gateway::demo::DemoArgs::command()),
        "defaultPort": defaults.port,
        "shutdownTimeoutSecs": defaults.http.shutdown_timeout.as_secs(),
    });
    let path = dir.join("known.json");
    std::fs::write(&path, known.to_string()).unwrap();
    path
}

fn validate(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    // scripts/test.sh's virtualenv when there is one, as cargo test run by hand finds it.
    let venv = root().join("target/pyvenv/bin/python");
    let python = std::env::var("AFW_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".into()
        }
    });
    let out = Command::new(&python)
        .arg(root().join("tests/deploy/validate.py"))
        .arg(kind)
        .arg(known(dir.path()))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} ({e}): run scripts/test.sh, which installs the validators")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("ModuleNotFoundError"),
        "{python} lacks a validator module; scripts/test.sh installs them in target/pyvenv \
         (or: pip install jsonschema pyyaml kubernetes-validate):\n{text}"
    );
    assert!(
        out.status.success(),
        "{kind} files do not validate:\n{text}"
    );
    assert!(text.contains(&format!("ok: {kind}")), "{text}");
}

#[test]
fn the_compose_file_follows_the_compose_spec_and_names_only_what_exists() {
    validate("compose");
}

#[test]
fn the_kubernetes_manifests_validate_and_agree_with_the_gateway() {
    validate("k8s");
}

#[test]
fn deploy_nginx_conf_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("deploy/nginx.conf"),
        dir.path().join("nginx.conf"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("afw-upstreams.conf"),
        "server 127.0.0.1:3101 max_fails=3 fail_timeout=2s;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("afw-listen.conf"),
        "listen 127.0.0.1:18999;\n",
    )
    .unwrap();
    let out = Command::new("nginx")
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg("nginx.conf")
        .output()
        .expect("nginx is required (scripts/test.sh installs it with apt-get)");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("test is successful"),
        "{text}"
    );
}
