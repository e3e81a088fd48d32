//! A certificate authority made for a test, and a server certificate it signs for 127.0.0.1,
//! for Redis over TLS (one server, or a cluster's nodes).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The authority's PEM, and the server's certificate and key signed by it (for 127.0.0.1).
pub fn certificates() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "afw test authority");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The files of [`certificates`] in a folder: `ca.pem`, `redis.pem`, `redis.key`.
#[derive(Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn write(dir: &Path) -> TlsFiles {
        let (ca, cert, key) = certificates();
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("redis.pem"),
            key: dir.join("redis.key"),
        };
        for (path, pem) in [(&files.ca, &ca), (&files.cert, &cert), (&files.key, &key)] {
            std::fs::write(path, pem).unwrap();
        }
        files
    }

    /// `redis-server` arguments listening on `port` with TLS only, cluster bus and
    /// replication included.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cluster".into(),
            "yes".into(),
            "--tls-replication".into(),
            "yes".into(),
            "--tls-auth-clients".into(),
            "no".into(),
            "--tls-cert-file".into(),
            self.cert.display().to_string(),
            "--tls-key-file".into(),
            self.key.display().to_string(),
            "--tls-ca-cert-file".into(),
            self.ca.display().to_string(),
        ]
    }

    /// A client of `port` trusting the authority.
    pub fn client(&self, port: u16) -> redis::RedisResult<redis::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        redis::Client::build_with_tls(
            format!("rediss://127.0.0.1:{port}"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(&self.ca).unwrap()),
            },
        )
    }
}
