//! `GET /api/whoami`: what the request's credentials are (subject, tenant, role, sessions,
//! expiry), so a page can show only what its user may do. The server enforces the role
//! whatever a page shows.

use std::sync::Arc;

use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::credentials::{Principal, DEFAULT_TENANT};

#[utoipa::path(get, path = "/api/whoami", tag = "operations", operation_id = "whoami", responses((status = 200, description = "`{role, tenant, subject, sessions?}` of the credentials", body = Object), super::openapi::Errors))]
pub async fn whoami(principal: Option<Extension<Arc<Principal>>>) -> Json<Value> {
    Json(match principal {
        // No credentials configured: everyone is the default tenant's admin.
        None => json!({
            "credentials": false, "subject": null, "tenant": DEFAULT_TENANT,
            "role": "admin", "sessions": null, "expiresAt": null,
        }),
        Some(Extension(p)) => json!({
            "credentials": true,
            "subject": &*p.subject,
            "tenant": &*p.tenant,
            "role": p.role.as_str(),
            "sessions": p.sessions.as_ref().map(|s| s.iter().map(|x| &**x).collect::<Vec<_>>()),
            "expiresAt": p.expires_at_ms.map(crate::time::iso_ms),
        }),
    })
}
