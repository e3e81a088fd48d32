//! Every way a token can be wrong, each answered 401 with its code, and every kind of key the
//! gateway takes (HS256 secret; RS256, ES256 and EdDSA from a JWKS by `kid`; RSA from a PEM
//! file with an issuer and audience).

use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::support::Gateway;
use super::{config, fixture, hs256, now, SECRET};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// A token of `claims` signed with the private key file `key` as `alg`, with `kid`.
fn signed(alg: Algorithm, key: &str, kid: Option<&str>, claims: &Value) -> String {
    let pem = read(key);
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// The raw public key at the end of a PEM public key's DER (an uncompressed P-256 point, or
/// an Ed25519 key), base64url.
fn raw_public(file: &str, len: usize) -> Vec<u8> {
    let pem = String::from_utf8(read(file)).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    der[der.len() - len..].to_vec()
}

/// A JWKS of the three fixture key pairs' public halves, as `r1`, `e1` and `d1`.
fn jwks(dir: &std::path::Path) -> std::path::PathBuf {
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let rsa = EncodingKey::from_rsa_pem(&read("rsa.key")).unwrap();
    let mut r1 =
        serde_json::to_value(Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap()).unwrap();
    r1["kid"] = "r1".into();
    let point = raw_public("ec.pub", 65);
    let e1 = json!({"kty": "EC", "crv": "P-256", "kid": "e1", "alg": "ES256",
        "x": enc(&point[1..33]), "y": enc(&point[33..])});
    let d1 = json!({"kty": "OKP", "crv": "Ed25519", "kid": "d1", "alg": "EdDSA",
        "x": enc(&raw_public("ed.pub", 32))});
    let path = dir.join("jwks.json");
    std::fs::write(&path, json!({"keys": [r1, e1, d1]}).to_string()).unwrap();
    path
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The status and error code `token` gets on a read.
async fn answer(gw: &Gateway, token: &str) -> (u16, String) {
    let (s, v) = gw.with_key(token).get("/api/sessions").await;
    (s, v["error"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_tokens_of_each_kind_are_taken_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(None);
    c.auth.jwt_public_keys = Some(jwks(dir.path()));
    let gw = Gateway::start(c).await;
    let claims = json!({"sub": "ada", "exp": now() + 600});
    let good = [
        ("HS256", hs256(SECRET, &claims)),
        (
            "RS256",
            signed(Algorithm::RS256, "rsa.key", Some("r1"), &claims),
        ),
        (
            "ES256",
            signed(Algorithm::ES256, "ec.key", Some("e1"), &claims),
        ),
        (
            "EdDSA",
            signed(Algorithm::EdDSA, "ed.key", Some("d1"), &claims),
        ),
    ];
    for (what, t) in &good {
        assert_eq!(answer(&gw, t).await, (200, String::new()), "{what}");
    }
    let header = |alg: &str| b64(&json!({"alg": alg, "typ": "JWT"}));
    let rsa_pub = String::from_utf8(read("rsa.pub")).unwrap();
    let bad = [
        (
            "expired",
            hs256(SECRET, &json!({"sub": "ada", "exp": now() - 120})),
            "token_expired",
        ),
        (
            "not yet valid",
            hs256(
                SECRET,
                &json!({"sub": "ada", "exp": now() + 600, "nbf": now() + 300}),
            ),
            "invalid_token",
        ),
        (
            "signed with another secret",
            hs256("another-secret-of-at-least-32-bytes", &claims),
            "invalid_token",
        ),
        (
            "alg none",
            format!("{}.{}.", header("none"), b64(&claims)),
            "invalid_token",
        ),
        (
            "HS256 signed with the RSA public key",
            hs256(&rsa_pub, &claims),
            "invalid_token",
        ),
        (
            "an unknown kid",
            signed(Algorithm::RS256, "rsa.key", Some("zz"), &claims),
            "invalid_token",
        ),
        (
            "the right kid with another key's signature",
            signed(Algorithm::ES256, "ec.key", Some("r1"), &claims),
            "invalid_token",
        ),
        (
            "no exp",
            hs256(SECRET, &json!({"sub": "ada"})),
            "invalid_token",
        ),
        (
            "no sub",
            hs256(SECRET, &json!({"exp": now() + 600})),
            "invalid_token",
        ),
        (
            "an unknown role",
            hs256(
                SECRET,
                &json!({"sub": "ada", "exp": now() + 600, "role": "root"}),
            ),
            "invalid_token",
        ),
        (
            "a tenant that is not a tenant's name",
            hs256(
                SECRET,
                &json!({"sub": "ada", "exp": now() + 600, "tenant": "ac me"}),
            ),
            "invalid_token",
        ),
        ("garbage", "a.b.c".to_string(), "invalid_token"),
    ];
    for (what, t, code) in &bad {
        assert_eq!(answer(&gw, t).await, (401, code.to_string()), "{what}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pem_key_with_issuer_and_audience() {
    let mut c = config(None);
    c.auth.jwt_secret = None;
    c.auth.jwt_public_keys = Some(fixture("rsa.pub"));
    c.auth.jwt_issuer = Some("https://auth.example".into());
    c.auth.jwt_audience = Some("afw".into());
    let gw = Gateway::start(c).await;
    let claims = |iss: &str, aud: Option<&str>| {
        let mut c = json!({"sub": "ada", "exp": now() + 600, "iss": iss});
        if let Some(a) = aud {
            c["aud"] = a.into();
        }
        c
    };
    let rs = |c: &Value| signed(Algorithm::RS256, "rsa.key", None, c);
    let right = claims("https://auth.example", Some("afw"));
    assert_eq!(answer(&gw, &rs(&right)).await.0, 200);
    for (what, t) in [
        (
            "another issuer",
            rs(&claims("https://evil.example", Some("afw"))),
        ),
        (
            "another audience",
            rs(&claims("https://auth.example", Some("other"))),
        ),
        ("no audience", rs(&claims("https://auth.example", None))),
        (
            "ES256 where RS256 is configured",
            signed(Algorithm::ES256, "ec.key", None, &right),
        ),
        (
            "HS256 signed with the public key",
            hs256(&String::from_utf8(read("rsa.pub")).unwrap(), &right),
        ),
        (
            "the secret of another gateway",
            hs256(super::SECRET, &right),
        ),
    ] {
        assert_eq!(
            answer(&gw, &t).await,
            (401, "invalid_token".into()),
            "{what}"
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_token_stops_working_when_it_expires() {
    let mut c = config(None);
    c.auth.jwt_leeway_secs = 0;
    let gw = Gateway::start(c).await;
    let t = hs256(SECRET, &json!({"sub": "ada", "exp": now() + 2}));
    assert_eq!(answer(&gw, &t).await.0, 200);
    assert_eq!(answer(&gw, &t).await.0, 200, "taken again (from memory)");
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(answer(&gw, &t).await, (401, "token_expired".into()));
    gw.stop().await;
}
