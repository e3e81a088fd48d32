//! JSON Web Tokens: HS256 with `AFW_JWT_SECRET`, and RS256, ES256 or EdDSA with the public
//! keys of `AFW_JWT_PUBLIC_KEYS` (one PEM key, or a JWKS picked by `kid`). Each key accepts its
//! own algorithm only, so `alg: none` and an HS256 token signed with a public key are refused.

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{served_tenant, Principal, Refusal, Role, DEFAULT_TENANT, MAX_SESSION_PATTERNS};
use crate::config::{Auth, ConfigError};

/// The claims the gateway reads; others are ignored.
#[derive(Debug, Deserialize, Serialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

struct Key {
    alg: Algorithm,
    key: DecodingKey,
}

pub(super) struct Verifier {
    /// The secret and a PEM key: tried for a token with no `kid` (or one no JWKS names).
    unnamed: Vec<Key>,
    /// A JWKS's keys by `kid`.
    named: HashMap<String, Key>,
    validation: Validation,
    /// Tokens already verified, until they expire: an agent sends the same token with every
    /// request, and a lookup costs a small fraction of a verification. At most
    /// `AFW_JWT_CACHE_ENTRIES`; emptied when full.
    verified: DashMap<Box<str>, Arc<Principal>>,
    cache_max: usize,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

impl Verifier {
    pub(super) fn new(auth: &Auth) -> Result<Option<Verifier>, ConfigError> {
        let mut unnamed = Vec::new();
        let mut named = HashMap::new();
        if let Some(secret) = &auth.jwt_secret {
            unnamed.push(Key {
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        if let Some(path) = &auth.jwt_public_keys {
            const VAR: &str = "AFW_JWT_PUBLIC_KEYS";
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(VAR, format!("cannot read {}: {e}", path.display())))?;
            if text.trim_start().starts_with('{') {
                let set: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| bad(VAR, format!("not a JWKS: {e}")))?;
                for jwk in &set.keys {
                    let kid = jwk
                        .common
                        .key_id
                        .clone()
                        .ok_or_else(|| bad(VAR, "every key of the JWKS needs a `kid`"))?;
                    let alg = match (jwk.common.key_algorithm, &jwk.algorithm) {
                        (Some(a), _) => a.to_string().parse().ok(),
                        (None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
                        (None, AlgorithmParameters::EllipticCurve(_)) => Some(Algorithm::ES256),
                        (None, AlgorithmParameters::OctetKeyPair(_)) => Some(Algorithm::EdDSA),
                        (None, AlgorithmParameters::OctetKey(_)) => None,
                    };
                    let alg = alg
                        .filter(|a| matches!(a, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA))
                        .ok_or_else(|| {
                            bad(VAR, format!("key `{kid}`: only RS256, ES256 and EdDSA public keys are taken"))
                        })?;
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| bad(VAR, format!("key `{kid}`: {e}")))?;
                    named.insert(kid, Key { alg, key });
                }
                if named.is_empty() {
                    return Err(bad(VAR, "the JWKS has no keys"));
                }
            } else {
                let pem = text.as_bytes();
                let key = DecodingKey::from_rsa_pem(pem)
                    .map(|k| (Algorithm::RS256, k))
                    .or_else(|_| DecodingKey::from_ec_pem(pem).map(|k| (Algorithm::ES256, k)))
                    .or_else(|_| DecodingKey::from_ed_pem(pem).map(|k| (Algorithm::EdDSA, k)))
                    .map_err(|_| {
                        bad(
                            VAR,
                            "not a PEM public key (RSA, P-256 or Ed25519) or a JWKS",
                        )
                    })?;
                unnamed.push(Key {
                    alg: key.0,
                    key: key.1,
                });
            }
        }
        if unnamed.is_empty() && named.is_empty() {
            return Ok(None);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = auth.jwt_leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_aud = auth.jwt_audience.is_some();
        if let Some(aud) = &auth.jwt_audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(iss) = &auth.jwt_issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        Ok(Some(Verifier {
            unnamed,
            named,
            validation,
            verified: DashMap::new(),
            cache_max: auth.jwt_cache_entries,
        }))
    }

    /// The principal of `token`: from the cache while it has not expired, else verified (and
    /// then cached).
    pub(super) fn principal(&self, token: &str) -> Result<Arc<Principal>, Refusal> {
        if self.cache_max > 0 {
            if let Some(p) = self.verified.get(token) {
                if p.expires_at_ms.is_some_and(|at| at > crate::time::now_ms()) {
                    return Ok(Arc::clone(&p));
                }
            }
        }
        let p = Arc::new(self.verify(token)?);
        if self.cache_max > 0 {
            if self.verified.len() >= self.cache_max {
                self.verified.clear();
            }
            self.verified.insert(token.into(), Arc::clone(&p));
        }
        Ok(p)
    }

    fn verify(&self, token: &str) -> Result<Principal, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Refusal::invalid("not a token this gateway takes (bad header or algorithm)")
        })?;
        let candidates: Vec<&Key> = match header.kid.as_deref().and_then(|k| self.named.get(k)) {
            Some(key) => vec![key],
            None if header.kid.is_some() && self.unnamed.is_empty() => {
                return Err(Refusal::invalid(
                    "the token's `kid` names no key of this gateway",
                ))
            }
            None => self.unnamed.iter().collect(),
        };
        let key = candidates
            .into_iter()
            .find(|k| k.alg == header.alg)
            .ok_or_else(|| {
                Refusal::invalid(format!("{:?} tokens are not taken here", header.alg))
            })?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.alg];
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Refusal {
                    code: "token_expired",
                    message: "the token has expired".into(),
                },
                ErrorKind::ImmatureSignature => {
                    Refusal::invalid("the token is not valid yet (nbf)")
                }
                ErrorKind::InvalidSignature => {
                    Refusal::invalid("the token's signature is not valid")
                }
                ErrorKind::InvalidIssuer => Refusal::invalid("the token's issuer is not accepted"),
                ErrorKind::InvalidAudience => {
                    Refusal::invalid("the token's audience is not accepted")
                }
                ErrorKind::MissingRequiredClaim(c) => {
                    Refusal::invalid(format!("the token has no `{c}` claim"))
                }
                _ => Refusal::invalid("the token is not valid"),
            })?
            .claims;
        principal(claims)
    }
}

fn principal(c: Claims) -> Result<Principal, Refusal> {
    if c.sub.is_empty() || c.sub.len() > 256 {
        return Err(Refusal::invalid("`sub` must be 1-256 characters"));
    }
    let tenant = c.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
    served_tenant(tenant).map_err(Refusal::invalid)?;
    let role = match c.role.as_deref() {
        None => Role::Viewer,
        Some(r) => Role::parse(r)
            .ok_or_else(|| Refusal::invalid("`role` must be admin, agent or viewer"))?,
    };
    let sessions = match c.sessions {
        None => None,
        Some(list) => {
            if list.len() > MAX_SESSION_PATTERNS
                || list.iter().any(|p| p.is_empty() || p.len() > 256)
            {
                return Err(Refusal::invalid(format!(
                    "`sessions` holds 0-{MAX_SESSION_PATTERNS} ids or `prefix*` patterns of 1-256 characters"
                )));
            }
            Some(list.into_iter().map(String::into_boxed_str).collect())
        }
    };
    Ok(Principal {
        subject: Arc::from(c.sub),
        tenant: Arc::from(tenant),
        role,
        sessions,
        expires_at_ms: Some((c.exp.min(i64::MAX as u64 / 1000) * 1000) as i64),
    })
}

/// What `afw-gateway token` signs.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub sub: String,
    pub tenant: Option<String>,
    pub role: Role,
    pub ttl_secs: u64,
    pub sessions: Option<Vec<String>>,
}

/// A token for `req`, signed with the configured secret, or else the private key file; with the
/// configured issuer and audience.
pub fn sign(auth: &Auth, req: &SignRequest) -> Result<String, ConfigError> {
    let (alg, key) = if let Some(secret) = &auth.jwt_secret {
        (
            Algorithm::HS256,
            EncodingKey::from_secret(secret.as_bytes()),
        )
    } else if let Some(path) = &auth.jwt_private_key {
        const VAR: &str = "AFW_JWT_PRIVATE_KEY";
        let pem = std::fs::read(path)
            .map_err(|e| bad(VAR, format!("cannot read {}: {e}", path.display())))?;
        EncodingKey::from_rsa_pem(&pem)
            .map(|k| (Algorithm::RS256, k))
            .or_else(|_| EncodingKey::from_ec_pem(&pem).map(|k| (Algorithm::ES256, k)))
            .or_else(|_| EncodingKey::from_ed_pem(&pem).map(|k| (Algorithm::EdDSA, k)))
            .map_err(|_| bad(VAR, "not a PEM private key (RSA, P-256 or Ed25519)"))?
    } else {
        return Err(bad(
            "AFW_JWT_SECRET",
            "set it (or AFW_JWT_PRIVATE_KEY) to sign tokens",
        ));
    };
    let now = crate::time::now_ms().max(0) as u64 / 1000;
    let claims = Claims {
        sub: req.sub.clone(),
        exp: now + req.ttl_secs,
        tenant: req.tenant.clone(),
        role: Some(req.role.as_str().to_string()),
        sessions: req.sessions.clone(),
        iss: auth.jwt_issuer.clone(),
        aud: auth.jwt_audience.clone(),
        iat: Some(now),
    };
    jsonwebtoken::encode(&Header::new(alg), &claims, &key)
        .map_err(|e| bad("AFW_JWT_SECRET", format!("cannot sign: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth {
            jwt_secret: Some("s".repeat(32)),
            ..Auth::default()
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let a = auth();
        let v = Verifier::new(&a).unwrap().unwrap();
        let req = SignRequest {
            sub: "ada".into(),
            tenant: None,
            role: Role::Agent,
            ttl_secs: 60,
            sessions: Some(vec!["build-*".into()]),
        };
        let t = sign(&a, &req).unwrap();
        let p = v.verify(&t).unwrap();
        assert_eq!(
            (&*p.subject, p.role, &*p.tenant),
            ("ada", Role::Agent, "default")
        );
        assert!(p.may_see("build-1") && !p.may_see("other"));
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(v.verify(&forged).unwrap_err().code, "invalid_token");
        let other = Auth {
            jwt_secret: Some("t".repeat(32)),
            ..Auth::default()
        };
        assert!(v.verify(&sign(&other, &req).unwrap()).is_err());
        let acme = SignRequest {
            tenant: Some("acme".into()),
            ..req
        };
        assert_eq!(
            &*v.verify(&sign(&a, &acme).unwrap()).unwrap().tenant,
            "acme"
        );
    }
}
