//! Usage totals: which total a query names, checked, and read.

use std::sync::Arc;

use chrono::NaiveDate;

use super::ServiceError;
use crate::domain::problems::{check_name, Problems};
use crate::domain::usage::{UsageTotals, DEFAULT_TENANT};
use crate::store::UsageStore;

#[derive(Clone)]
pub struct Usage {
    pub store: Arc<dyn UsageStore>,
    /// The tenant the totals are of when credentials decide it; `None`: the `tenantId` a
    /// query names.
    pub tenant: Option<Arc<str>>,
}

/// A checked usage query: tenant, scope, period key, and the date as answered.
pub struct UsageQuery {
    pub tenant: String,
    pub scope: String,
    pub period: String,
    pub date: String,
}

/// Checks `period` (day or month), `date` (`YYYY-MM-DD`, or `YYYY-MM` for a month; today
/// in UTC by default) and at most one of `userId` and `sessionId`.
fn check_query(
    period: Option<&str>,
    date: Option<&str>,
    tenant: Option<&str>,
    user: Option<&str>,
    session: Option<&str>,
) -> Result<UsageQuery, ServiceError> {
    let mut p = Problems::default();
    let tenant = tenant.unwrap_or(DEFAULT_TENANT);
    for (field, v) in [
        ("tenantId", Some(tenant)),
        ("userId", user),
        ("sessionId", session),
    ] {
        if let Some(v) = v {
            if let Err(e) = check_name(field, v) {
                p.0.push(e);
            }
        }
    }
    if user.is_some() && session.is_some() {
        p.add("sessionId", "give userId or sessionId, not both");
    }
    let today = chrono::Utc::now().date_naive();
    let day = match date {
        None => Some(today),
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(&format!("{d}-01"), "%Y-%m-%d"))
            .ok(),
    };
    let (period, date) = match (period.unwrap_or("day"), day) {
        (_, None) => {
            p.add("date", "must be YYYY-MM-DD (or YYYY-MM for a month)");
            (String::new(), String::new())
        }
        ("day", Some(d)) if date.is_none_or(|s| s.len() == 10) => {
            let s = d.format("%Y-%m-%d").to_string();
            (format!("d:{s}"), s)
        }
        ("day", Some(_)) => {
            p.add("date", "a day is YYYY-MM-DD");
            (String::new(), String::new())
        }
        ("month", Some(d)) => {
            let s = d.format("%Y-%m").to_string();
            (format!("m:{s}"), s)
        }
        _ => {
            p.add("period", "must be day or month");
            (String::new(), String::new())
        }
    };
    p.done().map_err(ServiceError::Invalid)?;
    let scope = match (user, session) {
        (Some(u), _) => format!("u:{u}"),
        (_, Some(s)) => format!("s:{s}"),
        _ => "tenant".to_string(),
    };
    Ok(UsageQuery {
        tenant: tenant.to_string(),
        scope,
        period,
        date,
    })
}

impl Usage {
    /// Checks `period`, `date` and the one of `userId` and `sessionId` asked for, with the
    /// `tenantId` the credentials allow (theirs, or any name on a gateway without them).
    pub fn query(
        &self,
        period: Option<&str>,
        date: Option<&str>,
        tenant: Option<&str>,
        user: Option<&str>,
        session: Option<&str>,
    ) -> Result<UsageQuery, ServiceError> {
        let tenant = super::bound_tenant(self.tenant.as_deref(), tenant, "usage")?;
        check_query(period, date, Some(tenant), user, session)
    }

    pub async fn totals(&self, q: &UsageQuery) -> Result<UsageTotals, ServiceError> {
        Ok(self.store.usage(&q.tenant, &q.scope, &q.period).await?)
    }
}
