//! Usage totals (as the Python backend's Redis services kept them): an event may carry `usage:{inputTokens?, outputTokens?, costUsd?,
//! model?}`. The store adds it, in the step that stores the event (so a retried `eventId`
//! never counts twice), to totals per tenant, user and session, per UTC day and month, in
//! all and by model. Costs are integer micro-dollars, never floats.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::json::RawObject;
use super::{check_id, FieldProblem};

/// The tenant of events that name none.
pub const DEFAULT_TENANT: &str = "default";

/// Most tokens one event may report in each direction.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;
/// Most dollars one event may cost.
pub const MAX_COST_USD: u64 = 1_000_000;
const MAX_MODEL_CHARS: usize = 200;
/// The most a usage total holds: a sum past it stays at it and the total is marked
/// `saturated`. 10^15 is exact in the doubles of Redis's Lua, and a thousand times what a
/// year of the largest events one day could add (so only a hostile client gets there).
pub const USAGE_TOTAL_MAX: u64 = 1_000_000_000_000_000;
/// The hash field that marks a total that saturated.
pub const SATURATED: &str = "sat";

/// What one event used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
    pub model: Option<String>,
}

/// An event's usage with where it counts: tenant, user (when known) and the UTC day and
/// month of the event's `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDraft {
    pub usage: EventUsage,
    pub tenant: String,
    pub user: Option<String>,
    pub day: String,
    pub month: String,
}

impl UsageDraft {
    /// Every total this event adds to: (scope, period, keep seconds), scope `tenant`,
    /// `u:{user}` or `s:{session}`, period `d:YYYY-MM-DD` or `m:YYYY-MM`.
    pub fn buckets(
        &self,
        session_id: &str,
        day_keep: u64,
        month_keep: u64,
    ) -> Vec<(String, String, u64)> {
        let mut scopes = vec!["tenant".to_string(), format!("s:{session_id}")];
        if let Some(u) = &self.user {
            scopes.push(format!("u:{u}"));
        }
        scopes
            .into_iter()
            .flat_map(|s| {
                [
                    (s.clone(), format!("d:{}", self.day), day_keep),
                    (s, format!("m:{}", self.month), month_keep),
                ]
            })
            .collect()
    }

    /// The increments of one total, as hash fields: `in`, `out`, `cost`, `n`, and the same
    /// with `:{model}` when the event names its model.
    pub fn increments(&self) -> Vec<(String, u64)> {
        let u = &self.usage;
        let mut out = vec![
            ("in".to_string(), u.input_tokens),
            ("out".to_string(), u.output_tokens),
            ("cost".to_string(), u.cost_micros),
            ("n".to_string(), 1),
        ];
        if let Some(m) = &u.model {
            let by_model: Vec<(String, u64)> =
                out.iter().map(|(f, v)| (format!("{f}:{m}"), *v)).collect();
            out.extend(by_model);
        }
        out
    }
}

/// Dollars as written (`0.0125`, `3`, `1e-6`) to micro-dollars, rounded half up at the
/// sixth decimal; `None` for a negative, malformed or too large amount.
pub fn micros(text: &str) -> Option<u64> {
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All digits, and where the point falls among them after the exponent and 6 decimals.
    let digits: String = format!("{int}{frac}");
    let point = int.len() as i64 + exp as i64 + 6;
    if point > 30 {
        return None;
    }
    let (whole, rest) = if point <= 0 {
        (
            "".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let mut n: u64 = if whole.is_empty() {
        0
    } else {
        whole.trim_start_matches('0').parse().unwrap_or(0)
    };
    if whole.trim_start_matches('0').len() > 19 {
        return None;
    }
    if rest.as_bytes().first().is_some_and(|&b| b >= b'5') {
        n = n.checked_add(1)?;
    }
    (n <= MAX_COST_USD * 1_000_000).then_some(n)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UsageBody<'a> {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(borrow)]
    cost_usd: Option<&'a RawValue>,
    model: Option<String>,
}

/// The usage an event body carries, if any, with its tenant and user from the body and its
/// day and month from `timestamp` (the event's own, else when it was received).
pub fn usage_draft(
    obj: &RawObject<'_>,
    timestamp: &str,
    prefix: &str,
) -> Result<Option<UsageDraft>, Vec<FieldProblem>> {
    let Some(raw) = obj.get("usage").filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let field = |name: &str| format!("{prefix}usage{name}");
    let body: UsageBody<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        vec![FieldProblem::new(field(""), format!("must be {{inputTokens?, outputTokens?, costUsd?, model?}} with whole token counts ({e})"))]
    })?;
    let mut problems = Vec::new();
    for (name, v) in [
        (".inputTokens", body.input_tokens),
        (".outputTokens", body.output_tokens),
    ] {
        if v.is_some_and(|n| n > MAX_TOKENS) {
            problems.push(FieldProblem::new(
                field(name),
                format!("must be at most {MAX_TOKENS}"),
            ));
        }
    }
    let cost_micros = match body.cost_usd.map(|r| r.get()) {
        None | Some("null") => 0,
        Some(text) => micros(text).unwrap_or_else(|| {
            problems.push(FieldProblem::new(
                field(".costUsd"),
                format!("must be a number of dollars from 0 to {MAX_COST_USD}"),
            ));
            0
        }),
    };
    if let Some(m) = &body.model {
        if let Err(p) = check_id(&field(".model"), m, MAX_MODEL_CHARS) {
            problems.push(p);
        }
    }
    let text = |name: &str| obj.str(name).ok().flatten().map(|s| s.into_owned());
    let tenant = text("tenantId").unwrap_or_else(|| DEFAULT_TENANT.to_string());
    if let Err(p) = check_id(&format!("{prefix}tenantId"), &tenant, MAX_MODEL_CHARS) {
        problems.push(p);
    }
    // The user is a bucket `GET /api/usage?userId=` must be able to name.
    let user = text("userId").or_else(|| text("user"));
    if let Some(u) = &user {
        if let Err(p) = check_id(&format!("{prefix}userId"), u, MAX_MODEL_CHARS) {
            problems.push(p);
        }
    }
    let Some(t) = crate::time::parse(timestamp) else {
        problems.push(FieldProblem::new(
            format!("{prefix}timestamp"),
            "must be an ISO 8601 timestamp",
        ));
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Some(UsageDraft {
        usage: EventUsage {
            input_tokens: body.input_tokens.unwrap_or(0),
            output_tokens: body.output_tokens.unwrap_or(0),
            cost_micros,
            model: body.model,
        },
        tenant,
        user,
        day: t.format("%Y-%m-%d").to_string(),
        month: t.format("%Y-%m").to_string(),
    }))
}

/// One total as read back: the hash fields `in`, `out`, `cost`, `n` and their `:{model}`s.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageTotals {
    pub fields: BTreeMap<String, u64>,
}

fn dollars(micros: u64) -> Value {
    serde_json::from_str(&format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000))
        .unwrap_or(Value::Null)
}

impl UsageTotals {
    fn part(&self, suffix: &str) -> Value {
        let get = |f: &str| {
            self.fields
                .get(&format!("{f}{suffix}"))
                .copied()
                .unwrap_or(0)
        };
        json!({
            "inputTokens": get("in"),
            "outputTokens": get("out"),
            "costMicroUsd": get("cost"),
            "costUsd": dollars(get("cost")),
            "events": get("n"),
        })
    }

    /// Adds one event's increments (as [`UsageDraft::increments`]), saturating at
    /// [`USAGE_TOTAL_MAX`] and marking the total when one does, as `events_append.lua` does.
    pub fn add(&mut self, incr: &[(String, u64)]) {
        for (f, by) in incr {
            let v = self.fields.entry(f.clone()).or_default();
            let sum = v.saturating_add(*by);
            *v = sum.min(USAGE_TOTAL_MAX);
            if sum > USAGE_TOTAL_MAX {
                self.fields.insert(SATURATED.to_string(), 1);
            }
        }
    }

    /// The totals as the API shows them, with `byModel`, and `saturated` when a sum reached
    /// [`USAGE_TOTAL_MAX`].
    pub fn render(&self) -> Value {
        let mut v = self.part("");
        v["saturated"] = self.fields.contains_key(SATURATED).into();
        let models: BTreeMap<&str, Value> = self
            .fields
            .keys()
            .filter_map(|k| k.strip_prefix("n:"))
            .map(|m| (m, self.part(&format!(":{m}"))))
            .collect();
        v["byModel"] = json!(models);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_become_exact_micros() {
        for (text, want) in [
            ("0", Some(0)),
            ("3", Some(3_000_000)),
            ("0.0125", Some(12_500)),
            ("0.1", Some(100_000)),
            ("1e-6", Some(1)),
            ("1.5E2", Some(150_000_000)),
            ("0.0000005", Some(1)),
            ("0.0000004", Some(0)),
            ("12.3456789", Some(12_345_679)),
            ("-1", None),
            ("abc", None),
            ("1e40", None),
        ] {
            assert_eq!(micros(text), want, "{text}");
        }
        assert_eq!(dollars(12_500), json!(0.0125));
    }
}
