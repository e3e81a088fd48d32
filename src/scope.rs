//! Scoped ids: how everything an instance keeps of all tenants at once (the hub's
//! subscribers, the long polls' waiters, the bus) names a tenant's session, lock or queue.
//! The id itself for the default tenant (so its path costs nothing), and
//! `\u{1}{tenant}\u{1}{id}` for any other ([`crate::tenancy`]). No id a caller chooses may
//! hold a control character, so the two cannot meet; a scoped id never leaves the process
//! ([`local`] gives the id back for frames and logs).

use std::borrow::Cow;

use crate::domain::usage::DEFAULT_TENANT;

/// What marks a scoped id of a tenant other than the default one.
const MARK: char = '\u{1}';

/// `id` of `tenant` as the hub, the waiters and the bus key it.
pub fn scoped<'a>(tenant: Option<&str>, id: &'a str) -> Cow<'a, str> {
    match tenant {
        None => Cow::Borrowed(id),
        Some(t) => Cow::Owned(format!("{MARK}{t}{MARK}{id}")),
    }
}

/// The id a scoped id names, as its tenant knows it.
pub fn local(scoped: &str) -> &str {
    match scoped.strip_prefix(MARK) {
        None => scoped,
        Some(rest) => rest.split_once(MARK).map_or(rest, |(_, id)| id),
    }
}

/// The tenant of a scoped id (`None`: the default tenant).
pub fn tenant_of(scoped: &str) -> Option<&str> {
    scoped
        .strip_prefix(MARK)
        .and_then(|rest| rest.split_once(MARK))
        .map(|(t, _)| t)
}

/// A tenant's name as stores and services carry it: `None` for the default tenant.
pub fn scope_of(tenant: &str) -> Option<&str> {
    (tenant != DEFAULT_TENANT).then_some(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_ids_round_trip_and_the_default_costs_nothing() {
        assert!(matches!(scoped(None, "s"), Cow::Borrowed("s")));
        let s = scoped(Some("acme"), "s:1");
        assert_eq!(local(&s), "s:1");
        assert_eq!(tenant_of(&s), Some("acme"));
        assert_eq!(local("plain"), "plain");
        assert_eq!(tenant_of("plain"), None);
        assert_ne!(scoped(Some("acme"), "x"), scoped(None, "acme\u{1}x"));
        assert_eq!(scope_of(DEFAULT_TENANT), None);
        assert_eq!(scope_of("acme"), Some("acme"));
    }
}
