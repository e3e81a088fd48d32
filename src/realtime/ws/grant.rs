//! What a connection's credentials allow: none needed, pending (only an `auth` message is
//! served), or held until they expire (plus a grace for fresh ones); what they reach; and the
//! `auth` message that gives or renews them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{proto, Connection, End};
use crate::credentials::{Principal, Role};
use crate::realtime::protocol::close;

/// What a connection may do.
pub(super) enum Grant {
    /// No credentials are configured: everything.
    Open,
    /// Credentials are required and none came yet: only an `auth` message is served.
    Pending,
    /// What these credentials allow.
    Held(Arc<Principal>),
}

/// When a connection holding `p` closes unless fresh credentials come: `grace` after the
/// token's expiry (never, for an API key).
pub(super) fn expiry(p: &Principal, grace: Duration) -> Option<Instant> {
    let at = p.expires_at_ms?;
    let left = (at - crate::time::now_ms()).max(0) as u64;
    Some(Instant::now() + Duration::from_millis(left) + grace)
}

impl Connection {
    /// Why the connection's credentials do not reach `session_id` with `role`, if they do not.
    pub(super) fn refuse(&self, session_id: &str, role: Role) -> Option<&'static str> {
        let Grant::Held(p) = &self.grant else {
            return None;
        };
        if !p.allows(role) {
            Some("the credentials' role does not allow this")
        } else if !p.may_see(session_id) {
            Some("the credentials do not reach this session")
        } else {
            None
        }
    }

    /// An `auth` message: the first credentials of a pending connection (closed with 1008 when
    /// they are not valid), or fresh ones of the same tenant and subject, which replace the
    /// current ones without a reconnect (a refusal leaves the current ones in place).
    pub(super) async fn auth(&mut self, token: &str) -> Result<(), End> {
        if let Grant::Open = self.grant {
            return self.send_text(proto::auth_ok(None)).await;
        }
        let principal = match self.ctx.credentials.authenticate(token) {
            Ok(p) => p,
            Err(refusal) => {
                if let Grant::Pending = self.grant {
                    self.send_error(refusal.code, &refusal.message, None)
                        .await?;
                    return Err(End::Close(close::POLICY, "invalid credentials"));
                }
                return self.send_error(refusal.code, &refusal.message, None).await;
            }
        };
        if let Grant::Held(old) = &self.grant {
            if old.tenant != principal.tenant || old.subject != principal.subject {
                return self
                    .send_error(
                        "forbidden",
                        "fresh credentials must be of the same tenant and subject",
                        None,
                    )
                    .await;
            }
        }
        let expires = principal.expires_at_ms;
        self.auth_due = expiry(&principal, self.ctx.auth_grace);
        self.auth_changed = true;
        self.grant = Grant::Held(Arc::clone(&principal));
        // Subscriptions the fresh credentials no longer reach end here.
        let lost: Vec<Arc<str>> = self
            .subs
            .keys()
            .filter(|sid| !principal.may_see(sid))
            .cloned()
            .collect();
        for sid in lost {
            self.subs.remove(&sid);
            self.ctx.hub.unsubscribe(&sid, self.handle.id);
            self.send_text(proto::unsubscribed(&sid, "forbidden"))
                .await?;
        }
        self.send_text(proto::auth_ok(expires)).await
    }
}
