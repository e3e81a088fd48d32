//! The label sets of the metrics: structs, not lists of pairs, so counting allocates nothing.

use prometheus_client::encoding::EncodeLabelSet;

/// Label of the quota refusals: `quota="sessions"` (a kind, never a tenant: tenants are
/// unbounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabel {
    pub quota: &'static str,
}

/// Label of the commands and input still waiting: `queue="commands"` or `queue="input"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: &'static str,
}

/// Label of the WebSocket close counter: `code="4008"`. A struct, not a list of pairs, so
/// counting allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: u16,
}

/// Label of the HTTP response counter: `status="201"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
}

/// Label of the HTTP duration histogram: the matched route (`/api/sessions/{id}`, never a raw
/// path) and the status class (`2xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: &'static str,
    pub class: &'static str,
}

/// Label of the store's command metrics: `op="events_append"` (a script by its file's name)
/// or the command (`get`, `hgetall`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

/// Label of a failed store command: its op and `kind` (`timeout`, `connection`, `error`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpKindLabel {
    pub op: &'static str,
    pub kind: &'static str,
}

/// Label of the frames written: `type="event"` or `type="other"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameLabel {
    pub r#type: &'static str,
}

/// Label of the resume counter: `outcome="recovered"` or `"unrecoverable"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Label of the job queue depths: `queue="builds", state="waiting"` (queues named by
/// `METRICS_JOB_QUEUES`, so bounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub queue: String,
    pub state: &'static str,
}
