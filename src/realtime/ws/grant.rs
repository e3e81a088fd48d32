//! What a connection's credentials allow: none needed, pending (only an `auth` message is
//! served), or held until they expire (plus a grace for fresh ones); what they reach; and the
//! `auth` message that gives or renews them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{proto, Connection, End};
use crate::credentials::{Principal, Role};
use crate::realtime::protocol::close;
use crate::scope::local;

/// When a connection holding `p` closes unless fresh credentials come: `grace` after the
/// token's expiry (never, for an API key).
pub(super) fn expiry(p: &Principal, grace: Duration) -> Option<Instant> {
    let at = p.expires_at_ms?;
    let left = (at - crate::time::now_ms()).max(0) as u64;
    Some(Instant::now() + Duration::from_millis(left) + grace)
}

/// What a connection may do is three fields of [`Connection`], kept small since every idle
/// connection holds them: `principal` (the credentials held, if any), `pending` (credentials
/// are required and none came yet: only `auth` is served) and `auth_due_us` (when it closes
/// with 1008 unless fresh ones come). Neither held nor pending: none are configured.
impl Connection {
    /// When the connection closes unless credentials (or fresh ones) come.
    pub(super) fn auth_due(&self) -> Option<Instant> {
        (self.auth_due_us > 0).then(|| self.ctx.epoch + Duration::from_micros(self.auth_due_us))
    }

    pub(super) fn set_auth_due(&mut self, at: Option<Instant>) {
        self.auth_due_us = at.map_or(0, |at| {
            (at.saturating_duration_since(self.ctx.epoch).as_micros() as u64).max(1)
        });
        self.auth_changed = true;
    }

    /// Why the connection's credentials do not reach `session_id` with `role`, if they do not.
    pub(super) fn refuse(&self, session_id: &str, role: Role) -> Option<&'static str> {
        let p = self.principal.as_ref()?;
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
        if self.principal.is_none() && !self.pending {
            return self.send_text(proto::auth_ok(None)).await;
        }
        let principal = match self.ctx.credentials.authenticate(token) {
            Ok(p) => p,
            Err(refusal) => {
                if self.pending {
                    self.send_error(refusal.code, &refusal.message, None)
                        .await?;
                    return Err(End::Close(close::POLICY, "invalid credentials"));
                }
                return self.send_error(refusal.code, &refusal.message, None).await;
            }
        };
        if let Some(old) = &self.principal {
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
        if self.pending {
            match self.ctx.tenants.connect(&principal.tenant) {
                Ok(held) => self.held = held,
                Err(e) => {
                    self.send_error(e.code(), &e.message(), None).await?;
                    return Err(End::Close(close::POLICY, "quota"));
                }
            }
        }
        let expires = principal.expires_at_ms;
        self.set_auth_due(expiry(&principal, self.ctx.auth_grace));
        self.principal = Some(Arc::clone(&principal));
        self.pending = false;
        // Subscriptions the fresh credentials no longer reach end here.
        let lost: Vec<Arc<str>> = self
            .subs
            .keys()
            .filter(|sid| !principal.may_see(local(sid)))
            .cloned()
            .collect();
        for sid in lost {
            self.subs.remove(&sid);
            self.ctx.hub.unsubscribe(&sid, self.handle.id);
            self.send_text(proto::unsubscribed(local(&sid), "forbidden"))
                .await?;
        }
        self.send_text(proto::auth_ok(expires)).await
    }
}
