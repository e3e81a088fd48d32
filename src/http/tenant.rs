//! [`Scoped`]: a service of the request's tenant. The access middleware puts the tenant on a
//! request whose credentials name one other than the default; every other request is served
//! by the default tenant's services with no lookup and no allocation.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::service::Services;
use crate::tenancy::Tenant;

/// The service `S` of the tenant the request's credentials name.
pub struct Scoped<S>(pub Arc<S>);

/// A service as each tenant's [`Services`] holds it.
pub trait OfTenant {
    fn of(services: &Services) -> &Arc<Self>;
}

/// The tenant the request is served for, when not the default one.
pub fn tenant_of(parts: &Parts) -> Option<&Arc<Tenant>> {
    parts.extensions.get::<Arc<Tenant>>()
}

impl<S: OfTenant + Send + Sync> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Infallible> {
        let services = match tenant_of(parts) {
            Some(t) => &t.services,
            None => app.services(),
        };
        Ok(Scoped(Arc::clone(S::of(services))))
    }
}

macro_rules! of_tenant {
    ($($ty:ty => $field:ident),* $(,)?) => {$(
        impl OfTenant for $ty {
            fn of(services: &Services) -> &Arc<$ty> {
                &services.$field
            }
        }
    )*};
}

of_tenant! {
    crate::service::sessions::Sessions => sessions,
    crate::service::events::Events => events,
    crate::service::control::Control => control,
    crate::service::chains::Chains => chains,
    crate::service::locks::Locks => locks,
    crate::service::jobs::Jobs => jobs,
    crate::service::cache::Cache => cache,
    crate::service::user_context::UserContexts => user_contexts,
    crate::service::usage::Usage => usage,
    crate::service::permissions::Permissions => permissions,
}
