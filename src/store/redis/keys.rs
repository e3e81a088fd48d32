//! Every Redis key and channel name the gateway uses, built here and nowhere else: the Lua
//! scripts receive theirs in `KEYS[]` (channels in `ARGV`) and build none. The README lists
//! each key with its type and TTL.
//!
//! # Layout
//! `{prefix}{tenant scope}{kind}:{{session}}[:{rest}]`, for example `afw:events:{demo}`.
//! - **Tenant scope**: empty for the default tenant (so today's keys cost nothing), and
//!   `t:{tenant}:` for any other, so tenants fill it in rather than rewrite every key. No
//!   key kind is `t`, so the two cannot meet.
//! - **Hash tags**: every key of a session's atomic steps carries the session id as its one
//!   hash tag (`{demo}`), so each script touches one Redis Cluster slot.
//! - **Caller-chosen parts** (session, event, chain and item ids) are escaped: `%` → `%25`,
//!   `{` → `%7B`, `}` → `%7D`. So a tag always ends where its id ends, and since every key
//!   kind has a fixed shape with at most one free-form part at its end, no two distinct ids
//!   give one key.
//!
//! # Keys that span sessions
//! The listing indexes ([`Keys::session_index`], [`Keys::chain_index`] and the counters beside
//! it), the owner lookups ([`Keys::chain_owner`], [`Keys::item_owner`]) and the usage totals
//! ([`Keys::usage`], added to by the event append) are written in the same script as the
//! session's own keys. On one server they are single keys.
//!
//! # Partitions (Redis Cluster)
//! On a Cluster every script must keep to one slot, and a session's events must be published
//! on a sharded channel of that slot. So with [`Keys::clustered`], every session belongs to
//! one of `REDIS_PUBSUB_PARTITIONS` partitions (CRC16 of its id, modulo their number), each
//! with a hash tag of its own chosen so that the partitions spread evenly over the slot
//! space (and so over the masters, which hold ranges of it). A session's keys take its
//! partition's tag before the session's own part (`afw:events:{3-17}{demo}`), and every key
//! that spans sessions is one per partition (`afw:index:sessions:{3-17}`): the append, create,
//! delete and chain scripts still touch one slot, and listings, counts and usage totals read
//! every partition and merge. The owner lookups, which know only the item's id, ask every
//! partition at once. Keys of the other services (locks, queues, cache, context, rate, quota)
//! are tagged by their own entity in both layouts.

use crate::domain::control::ControlQueue;

/// Names under one prefix (`REDIS_PREFIX`, default `afw:`) and one tenant.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Prefix and tenant scope: every name starts with this.
    base: String,
    prefix: String,
    /// On a Cluster, each partition's hash tag (see the module's documentation).
    parts: Option<std::sync::Arc<[String]>>,
    /// The tenant's name, escaped: the hash tag of its quotas.
    tenant: String,
}

/// Redis Cluster's slots.
const SLOTS: usize = 16384;

/// CRC16 (XMODEM) of `b`, as Redis Cluster hashes keys.
fn crc16(b: &[u8]) -> usize {
    crc16::State::<crc16::XMODEM>::calculate(b) as usize
}

/// A hash tag for each of `n` partitions, the `i`th in the `i`th `n`th of the slot space.
fn partition_tags(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let range = i * SLOTS / n..((i + 1) * SLOTS / n).max(i * SLOTS / n + 1);
            (0u64..)
                .map(|k| format!("{i}-{k}"))
                .find(|tag| range.contains(&(crc16(tag.as_bytes()) % SLOTS)))
                .expect("every slot range holds some tag")
        })
        .collect()
}

/// A caller-chosen part of a key, escaped so it cannot end a hash tag or forge another id.
fn part(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '{', '}']) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out.into()
}

impl Keys {
    /// The default tenant's names.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            base: prefix.to_string(),
            prefix: prefix.to_string(),
            parts: None,
            tenant: crate::domain::usage::DEFAULT_TENANT.to_string(),
        }
    }

    /// The default tenant's names on a Cluster of `partitions` partitions.
    pub fn clustered(prefix: &str, partitions: usize) -> Keys {
        Keys {
            parts: Some(partition_tags(partitions.max(1)).into()),
            ..Keys::new(prefix)
        }
    }

    /// Another tenant's names (tenant ids are checked to be short and plain before this).
    pub fn for_tenant(&self, tenant: &str) -> Keys {
        Keys {
            base: format!("{}t:{}:", self.prefix, part(tenant)),
            prefix: self.prefix.clone(),
            parts: self.parts.clone(),
            tenant: part(tenant).into_owned(),
        }
    }

    /// Whether these are a Cluster's names.
    pub fn clustered_layout(&self) -> bool {
        self.parts.is_some()
    }

    /// How many partitions the keys that span sessions are split into (1 on one server).
    pub fn partitions(&self) -> usize {
        self.parts.as_ref().map_or(1, |p| p.len())
    }

    /// The partition of a session (0 on one server).
    pub fn partition(&self, session_id: &str) -> usize {
        match &self.parts {
            None => 0,
            Some(p) => crc16(session_id.as_bytes()) % p.len(),
        }
    }

    /// `{base}{kind}:{{entity}}`: an entity's key of one kind, in the entity's own slot.
    fn tagged(&self, kind: &str, session_id: &str) -> String {
        format!("{}{kind}:{{{}}}", self.base, part(session_id))
    }

    /// A session's key of one kind: [`Keys::tagged`] on one server; on a Cluster
    /// `{base}{kind}:{{partition tag}}{{session}}`, in its partition's slot.
    fn homed(&self, kind: &str, session_id: &str) -> String {
        match &self.parts {
            None => self.tagged(kind, session_id),
            Some(p) => format!(
                "{}{kind}:{{{}}}{{{}}}",
                self.base,
                p[self.partition(session_id)],
                part(session_id)
            ),
        }
    }

    /// `{base}{name}`, and on a Cluster the partition's tag after it (`:{tag}`).
    fn spanning(&self, name: &str, partition: usize) -> String {
        match &self.parts {
            None => format!("{}{name}", self.base),
            Some(p) => format!("{}{name}:{{{}}}", self.base, p[partition]),
        }
    }

    /// `{base}{name}:`, and on a Cluster the partition's tag after it, for a free-form part.
    fn spanning_part(&self, name: &str, partition: usize, rest: &str) -> String {
        match &self.parts {
            None => format!("{}{name}:{}", self.base, part(rest)),
            Some(p) => format!("{}{name}:{{{}}}{}", self.base, p[partition], part(rest)),
        }
    }

    /// HASH of a session's fields, plus `_epoch`, `_seq` (its stream), `_idx` (its member in
    /// the listing index) and `_chains`.
    pub fn session(&self, id: &str) -> String {
        self.homed("sessions", id)
    }

    /// LIST of a session's stored events, oldest first.
    pub fn events(&self, id: &str) -> String {
        self.homed("events", id)
    }

    /// STRING `{epoch}:{seq}`: the event with this `eventId` is stored in that stream.
    pub fn dedup(&self, session_id: &str, event_id: &str) -> String {
        format!("{}:{}", self.homed("dedup", session_id), part(event_id))
    }

    /// ZSET of a session's live items in `queue`, scored by expiry (ms, Redis's clock).
    pub fn queue(&self, queue: ControlQueue, session_id: &str) -> String {
        self.homed(queue.name(), session_id)
    }

    /// HASH of the items of a session's `queue`: `r:{id}` its record, `t:{id}` set once it
    /// is no longer pending, `a:{id}` its acknowledgement.
    pub fn queue_items(&self, queue: ControlQueue, session_id: &str) -> String {
        format!("{}:items", self.queue(queue, session_id))
    }

    /// STRING: the session an item of `queue` belongs to, in the session's partition (spans
    /// sessions; see above).
    pub fn item_owner(&self, queue: ControlQueue, item_id: &str, partition: usize) -> String {
        self.spanning_part(&format!("{}-owner", queue.name()), partition, item_id)
    }

    /// HASH of a chain: `json` (the chain) and `v` (its version).
    pub fn chain(&self, session_id: &str, chain_id: &str) -> String {
        format!("{}:{}", self.homed("chain", session_id), part(chain_id))
    }

    /// LIST of a session's chain ids in creation order.
    pub fn session_chains(&self, session_id: &str) -> String {
        self.homed("chains", session_id)
    }

    /// STRING: the session a chain id belongs to, in the session's partition (spans
    /// sessions; see above).
    pub fn chain_owner(&self, chain_id: &str, partition: usize) -> String {
        self.spanning_part("chain-owner", partition, chain_id)
    }

    /// ZSET (all scores 0) of `"{startedAt ms}:{id}"`, for listing sessions without `KEYS`
    /// (spans sessions; one per partition).
    pub fn session_index(&self, partition: usize) -> String {
        self.spanning("index:sessions", partition)
    }

    /// ZSET of chains scored by last update (ms), members from `chains::chain_member`; `active`:
    /// only pending, running and paused ones (spans sessions; one per partition).
    pub fn chain_index(&self, active: bool, partition: usize) -> String {
        if active {
            self.spanning("index:chains:active", partition)
        } else {
            self.spanning("index:chains", partition)
        }
    }

    /// HASH of counters beside the chain index: `n:{status}` chains, `p:{status}` their
    /// progress summed in hundredths of a percent (spans sessions; one per partition).
    pub fn chain_stats(&self, partition: usize) -> String {
        self.spanning("index:chains:stats", partition)
    }

    /// HASH of what each member of the chain index adds to [`Keys::chain_stats`]:
    /// `"{status}|{progress}"` (spans sessions; one per partition).
    pub fn chain_meta(&self, partition: usize) -> String {
        self.spanning("index:chains:meta", partition)
    }

    /// Pub/sub channel of the tenant's stored events on one server (`PUBLISH`); on a Cluster
    /// the sharded channel of a partition (`SPUBLISH`), which every tenant shares (its
    /// messages name the tenant in the session id: see `pubsub`).
    pub fn events_channel(&self, partition: usize) -> String {
        match &self.parts {
            None => format!("{}events", self.base),
            Some(p) => format!("{}events:{{{}}}", self.prefix, p[partition]),
        }
    }

    /// Every partition's events channel (one on one server).
    pub fn events_channels(&self) -> Vec<String> {
        (0..self.partitions())
            .map(|p| self.events_channel(p))
            .collect()
    }

    /// HASH of a permission request: `request` (its JSON), `status`, `decision` (JSON, once
    /// settled) and `exp` (its deadline, ms); expires `PERMISSION_KEEP_SECS` after it. On a
    /// Cluster in the partition of its id, like a session's keys.
    pub fn permission(&self, id: &str) -> String {
        self.homed("permission", id)
    }

    /// ZSET of permission request ids by deadline (ms): all of them kept, or (`pending`) only
    /// those not settled (one per partition).
    pub fn permission_index(&self, pending: bool, partition: usize) -> String {
        if pending {
            self.spanning("index:permissions:pending", partition)
        } else {
            self.spanning("index:permissions", partition)
        }
    }

    /// STRING: the permission rules (JSON), as last set; no TTL.
    pub fn permission_rules(&self) -> String {
        format!("{}permission-rules", self.base)
    }

    /// HASH of a lock: `owner`, `token`, `exp` (ms, Redis's clock; 0 once released) and
    /// `fence` (the last fencing token granted).
    pub fn lock(&self, name: &str) -> String {
        self.tagged("lock", name)
    }

    /// One key of a job queue, all in the queue's slot: `""` the HASH of its jobs by id,
    /// `waiting`, `delayed`, `retry`, `active`, `completed`, `dead` its ZSETs and `seq` its
    /// counter.
    pub fn jobs(&self, queue: &str, part_name: &str) -> String {
        let k = self.tagged("jobs", queue);
        if part_name.is_empty() {
            k
        } else {
            format!("{k}:{part_name}")
        }
    }

    /// ZSET of a namespace's entries carrying `tag`, scored by their expiry (ms).
    pub fn cache_tag(&self, namespace: &str, tag: &str) -> String {
        format!("{}:tag:{}", self.tagged("cache", namespace), part(tag))
    }

    /// A namespace's `entries` (HASH: `v:{key}` value, `m:{key}` version, expiry and tags),
    /// `keys` (ZSET of its entries by expiry) or `stats` (HASH `hits`, `misses`).
    pub fn cache_meta(&self, namespace: &str, which: &str) -> String {
        format!("{}:{which}", self.tagged("cache", namespace))
    }

    /// One key of a user's context: `""` the HASH of its fields (`p:{name}` per preference),
    /// `searches` and `history` its LISTs.
    pub fn context(&self, user_id: &str, part_name: &str) -> String {
        let k = self.tagged("context", user_id);
        if part_name.is_empty() {
            k
        } else {
            format!("{k}:{part_name}")
        }
    }

    /// HASH of one usage total: `scope` is `tenant`, `u:{user}` or `s:{session}`, `period`
    /// `d:YYYY-MM-DD` or `m:YYYY-MM`. On a Cluster, the share of it added by sessions of one
    /// partition (in that partition's slot); the total is the sum of [`Keys::usage_shares`].
    pub fn usage(&self, scope: &str, period: &str, partition: usize) -> String {
        match &self.parts {
            None => format!("{}:{period}", self.tagged("usage", scope)),
            Some(p) => format!(
                "{}usage:{{{}}}{{{}}}:{period}",
                self.base,
                p[partition],
                part(scope)
            ),
        }
    }

    /// Every key of one usage total (one on one server, one per partition on a Cluster).
    pub fn usage_shares(&self, scope: &str, period: &str) -> Vec<String> {
        (0..self.partitions())
            .map(|p| self.usage(scope, period, p))
            .collect()
    }

    /// STRING of a rate-limited subject's GCRA state (microseconds, Redis's clock); it expires
    /// when the subject's budget is full again.
    pub fn rate(&self, subject: &str) -> String {
        self.tagged("rate", subject)
    }

    /// A quota of the tenant: `""` the ZSET of a held set's members by expiry (ms), `w` the
    /// HASH of their weights with `#total`, or, for a counter, `""` its STRING. All of a
    /// tenant's quotas share one hash tag, the tenant's name: one step takes a session and
    /// counts its event together.
    pub fn quota(&self, name: &str, part_name: &str) -> String {
        let k = format!("{}quota:{{{}}}:{}", self.base, self.tenant, part(name));
        if part_name.is_empty() {
            k
        } else {
            format!("{k}:{part_name}")
        }
    }

    /// Pub/sub channel of the tenant's other notifications (commands, chains, wake-ups,
    /// deletions; probes on the default tenant's).
    pub fn control_channel(&self) -> String {
        format!("{}control", self.base)
    }

    /// `PSUBSCRIBE`'s pattern of every other tenant's channel of `kind` (`events`, `control`).
    pub fn tenant_channels(&self, kind: &str) -> String {
        format!("{}t:*:{kind}", glob_escaped(&self.prefix))
    }

    /// `SCAN`'s pattern of one kind's keys in this key space (`{base}{kind}:*`, escaped).
    pub fn scan_pattern(&self, kind: &str) -> String {
        format!("{}{kind}:*", glob_escaped(&self.base))
    }

    /// A key of this key space without a hash tag: `instances`, `index:locks` (one server).
    pub fn plain(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    /// The entity a key `{base}{kind}:{{entity}}…` names, unescaped, and what follows its tag.
    pub fn entity_of(&self, kind: &str, key: &str) -> Option<(String, String)> {
        let rest = key
            .strip_prefix(&self.base)?
            .strip_prefix(kind)?
            .strip_prefix(":{")?;
        let (entity, after) = rest.split_once('}')?;
        Some((unescaped(entity), after.to_string()))
    }

    /// The tenant of another tenant's channel or key, and the rest of its name.
    pub fn channel_tenant<'a>(&self, channel: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = channel.strip_prefix(&self.prefix)?.strip_prefix("t:")?;
        let (tenant, kind) = rest.split_once(':')?;
        crate::credentials::valid_tenant(tenant).then_some((tenant, kind))
    }
}

/// `s` with the glob characters of a `SCAN`/`PSUBSCRIBE` pattern escaped.
fn glob_escaped(s: &str) -> String {
    let special = |c: char| matches!(c, '*' | '?' | '[' | ']' | '\\');
    s.chars()
        .flat_map(|c| special(c).then_some('\\').into_iter().chain([c]))
        .collect()
}

/// What `part` escaped, as it was.
pub fn unescaped(s: &str) -> String {
    s.replace("%7B", "{")
        .replace("%7D", "}")
        .replace("%25", "%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::chains::{chain_member, parse_chain_member};
    use std::collections::HashSet;

    /// Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, or of the whole key.
    fn slot(key: &str) -> u16 {
        let b = key.as_bytes();
        let tagged = b.iter().position(|&c| c == b'{').and_then(|open| {
            let close = b[open + 1..].iter().position(|&c| c == b'}')?;
            (close > 0).then(|| &b[open + 1..open + 1 + close])
        });
        let mut crc: u16 = 0;
        for &byte in tagged.unwrap_or(b) {
            crc ^= (byte as u16) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc % 16384
    }

    /// Ids that would meet unescaped: `dedup("a}:{b", "c")` and `dedup("a", "{b}:c")` are both
    /// `dedup:{a}:{b}:c`; `"}"` makes an empty tag.
    const IDS: [&str; 16] = [
        "demo",
        "a",
        "c",
        "a}:{b",
        "{b}:c",
        "a:b",
        "a}b",
        "{x}",
        "}",
        "{",
        "%7D",
        "a%b",
        "sp ace",
        "ü-日本",
        "*",
        "a:b:c",
    ];

    /// Every key of one session's atomic steps.
    fn session_keys(k: &Keys, sid: &str) -> Vec<String> {
        vec![
            k.session(sid),
            k.events(sid),
            k.dedup(sid, "e:1"),
            k.dedup(sid, "}{"),
            k.queue(ControlQueue::Commands, sid),
            k.queue_items(ControlQueue::Commands, sid),
            k.queue(ControlQueue::Input, sid),
            k.queue_items(ControlQueue::Input, sid),
            k.session_chains(sid),
            k.chain(sid, "c}1"),
        ]
    }

    #[test]
    fn every_key_of_a_session_step_is_in_one_slot() {
        for k in [Keys::new("afw:"), Keys::new("afw:").for_tenant("acme")] {
            for sid in IDS {
                let keys = session_keys(&k, sid);
                let first = slot(&keys[0]);
                for key in &keys {
                    assert_eq!(slot(key), first, "{key} is not in {sid:?}'s slot");
                }
            }
        }
        assert_eq!(slot("afw:sessions:{demo}"), slot("demo"));
    }

    #[test]
    fn no_two_distinct_ids_give_one_key() {
        let k = Keys::new("afw:");
        let mut seen = HashSet::new();
        let mut n = 0;
        for tenant in [None, Some("acme"), Some("t")] {
            let k = tenant.map_or(k.clone(), |t| k.for_tenant(t));
            for a in IDS {
                n += 3;
                seen.insert(k.item_owner(ControlQueue::Commands, a, 0));
                seen.insert(k.item_owner(ControlQueue::Input, a, 0));
                seen.insert(k.chain_owner(a, 0));
                for b in IDS {
                    for key in [k.dedup(a, b), k.chain(a, b)] {
                        n += 1;
                        seen.insert(key);
                    }
                }
                for key in session_keys(&k, a) {
                    n += 1;
                    seen.insert(key);
                }
            }
        }
        // Every (tenant, kind, ids) above is distinct, so every key must be.
        assert_eq!(seen.len(), n);
    }

    #[test]
    fn on_a_cluster_every_key_of_a_session_step_and_its_channel_share_the_partition_slot() {
        let base = Keys::clustered("afw:", 16);
        for k in [base.clone(), base.for_tenant("acme")] {
            for sid in IDS {
                let p = k.partition(sid);
                let mut keys = session_keys(&k, sid);
                keys.extend([
                    k.session_index(p),
                    k.chain_index(true, p),
                    k.chain_index(false, p),
                    k.chain_stats(p),
                    k.chain_meta(p),
                    k.chain_owner("c}1", p),
                    k.item_owner(ControlQueue::Input, "i{", p),
                    k.usage("tenant", "d:2026-12-03", p),
                    k.usage(&format!("s:{sid}"), "m:2026-12", p),
                    k.events_channel(p),
                ]);
                let first = slot(&keys[0]);
                for key in &keys {
                    assert_eq!(slot(key), first, "{key} is not in {sid:?}'s partition slot");
                }
            }
            // A tenant's quotas share one slot.
            assert_eq!(
                slot(&k.quota("sessions", "w")),
                slot(&k.quota("events:d:2026-12-03", ""))
            );
        }
    }

    #[test]
    fn partitions_spread_evenly_over_the_slots() {
        for n in [1, 3, 16, 100, MAX] {
            let tags = partition_tags(n);
            assert_eq!(tags.len(), n);
            for (i, t) in tags.iter().enumerate() {
                let s = slot(&format!("{{{t}}}")) as usize;
                assert!(
                    s * n / SLOTS == i,
                    "partition {i} of {n} is in slot {s}, outside its share"
                );
            }
        }
        // Ids land on every partition.
        let k = Keys::clustered("afw:", 16);
        let hit: HashSet<usize> = (0..1000).map(|i| k.partition(&format!("s-{i}"))).collect();
        assert_eq!(hit.len(), 16);
        assert_eq!(Keys::new("afw:").partition("anything"), 0);
    }

    const MAX: usize = crate::config::MAX_PUBSUB_PARTITIONS;

    #[test]
    fn on_a_cluster_no_two_distinct_ids_give_one_key() {
        let k = Keys::clustered("afw:", 16);
        let mut seen = HashSet::new();
        let mut n = 0;
        for a in IDS {
            for b in IDS {
                for key in [k.dedup(a, b), k.chain(a, b)] {
                    n += 1;
                    seen.insert(key);
                }
            }
            for key in session_keys(&k, a) {
                n += 1;
                seen.insert(key);
            }
            for p in 0..16 {
                n += 2;
                seen.insert(k.chain_owner(a, p));
                seen.insert(k.usage(a, "d:1", p));
            }
        }
        assert_eq!(seen.len(), n);
        assert_eq!(
            k.events_channel(0),
            "afw:events:{0-0}",
            "a plain, stable name"
        );
    }

    #[test]
    fn names_follow_the_prefix_and_read_plainly() {
        let k = Keys::new("x:");
        assert_eq!(k.session("s"), "x:sessions:{s}");
        assert_eq!(k.events("s"), "x:events:{s}");
        assert_eq!(k.dedup("s", "e"), "x:dedup:{s}:e");
        assert_eq!(k.queue(ControlQueue::Commands, "s"), "x:commands:{s}");
        assert_eq!(k.queue_items(ControlQueue::Input, "s"), "x:input:{s}:items");
        assert_eq!(k.chain("s", "c"), "x:chain:{s}:c");
        assert_eq!(k.chain_owner("c", 0), "x:chain-owner:c");
        assert_eq!(k.session_index(0), "x:index:sessions");
        assert_eq!(k.events_channel(0), "x:events");
        assert_eq!(k.control_channel(), "x:control");
        let acme = k.for_tenant("acme");
        assert_eq!(acme.events_channel(0), "x:t:acme:events");
        assert_eq!(
            acme.quota("sessions", "w"),
            "x:t:acme:quota:{acme}:sessions:w"
        );
        assert_eq!(k.tenant_channels("events"), "x:t:*:events");
        assert_eq!(
            k.channel_tenant("x:t:acme:events"),
            Some(("acme", "events"))
        );
        assert_eq!(k.channel_tenant("x:events"), None);
        assert_eq!(
            Keys::new("a*[").tenant_channels("control"),
            "a\\*\\[t:*:control"
        );
        assert_eq!(k.for_tenant("acme").session("s"), "x:t:acme:sessions:{s}");
        assert_eq!(k.session("a}b"), "x:sessions:{a%7Db}");
        let m = chain_member("s:1", "c\"2");
        assert_eq!(parse_chain_member(&m), Some(("s:1".into(), "c\"2".into())));
    }

    #[test]
    fn a_key_gives_back_its_entity_and_tenant() {
        let k = Keys::new("a*:");
        for id in IDS {
            assert_eq!(
                k.entity_of("jobs", &k.jobs(id, "")),
                Some((id.into(), "".into()))
            );
            let tag = k.cache_tag("ns", id);
            let (ns, rest) = k.entity_of("cache", &tag).unwrap();
            assert_eq!(
                (ns.as_str(), unescaped(rest.strip_prefix(":tag:").unwrap())),
                ("ns", id.into())
            );
        }
        assert_eq!(k.scan_pattern("lock"), "a\\*:lock:*");
        let acme = k.for_tenant("acme");
        assert_eq!(acme.scan_pattern("lock"), "a\\*:t:acme:lock:*");
        assert_eq!(
            k.entity_of("jobs", &acme.jobs("q", "")),
            None,
            "another tenant's"
        );
        assert_eq!(k.channel_tenant(&acme.lock("x")).map(|t| t.0), Some("acme"));
        assert_eq!(k.scan_pattern("t"), "a\\*:t:*", "every other tenant's keys");
    }
}
