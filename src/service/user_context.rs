//! User context: checks who and what, then one atomic store step per request, so two
//! hundred concurrent writers from any number of instances all land (the original read the
//! context, changed its copy and wrote it back over whatever happened meanwhile).

use std::sync::Arc;

use super::{bound_tenant, ServiceError};
use crate::domain::problems::check_name;
use crate::domain::user_context::{check_update, ContextUpdate, UserContext};
use crate::domain::FieldProblem;
use crate::store::UserContextStore;
use crate::time::Now;

#[derive(Clone)]
pub struct UserContexts {
    pub store: Arc<dyn UserContextStore>,
    /// `CONTEXT_VALUE_MAX_BYTES`.
    pub value_max: usize,
    /// The tenant the contexts are of when credentials decide it; `None`: the `tenantId`
    /// a request names.
    pub tenant: Option<Arc<str>>,
}

impl UserContexts {
    /// The (tenant, user) a query names.
    fn who(
        &self,
        user: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<(String, String), ServiceError> {
        let user =
            user.ok_or_else(|| ServiceError::invalid(FieldProblem::new("userId", "is required")))?;
        check_name("userId", user).map_err(ServiceError::invalid)?;
        let tenant = bound_tenant(self.tenant.as_deref(), tenant, "context")?;
        check_name("tenantId", tenant).map_err(ServiceError::invalid)?;
        Ok((tenant.to_string(), user.to_string()))
    }

    pub async fn get(
        &self,
        user: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<UserContext, ServiceError> {
        let (tenant, user) = self.who(user, tenant)?;
        Ok(self.store.context(&tenant, &user, &Now::get().iso).await?)
    }

    pub async fn update(&self, body: ContextUpdate) -> Result<UserContext, ServiceError> {
        let now = Now::get().iso;
        let named = body.tenant_id.clone();
        let (_tenant, user, change) =
            check_update(body, self.value_max, &now).map_err(ServiceError::Invalid)?;
        let tenant = bound_tenant(self.tenant.as_deref(), named.as_deref(), "context")?.to_string();
        self.store
            .update_context(&tenant, &user, &change, &now)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(vec![FieldProblem::new(
                    "preferences",
                    "the context would hold more than CONTEXT_MAX_PREFERENCES preferences",
                )])
            })
    }

    pub async fn delete(
        &self,
        user: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let (tenant, user) = self.who(user, tenant)?;
        Ok(self.store.delete_context(&tenant, &user).await?)
    }
}
