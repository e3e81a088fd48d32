//! The domain layer: what the gateway's data is and the rules it follows, with no I/O and no
//! import of anything above it. Stores persist these types, services combine stores around
//! them, and the HTTP and WebSocket edges parse into and render from them.
//!
//! - [`session`]: sessions, their stored fields, listing queries and the listing index.
//! - [`event`]: turning a posted body into a storable draft, reads and the resume rules;
//!   [`json`]: an object's members in order, values as raw text.
//! - [`control`]: commands and input: validation and stored records.
//! - [`chain`]: the chain state machine, its limits and the counters by status;
//!   [`chain_input`]: what moves a chain; [`workflow`]: chains as workflow-state views.
//! - [`locks`], [`jobs`] (and [`job_view`], a job as JSON text), [`cache`], [`user_context`],
//!   [`usage`]: the services beside the stream: their requests, checks and limits.
//! - [`claude_code`]: Claude Code's hooks as events; [`permissions`]: its permission prompts
//!   and the answers it reads; [`permission_rules`]: the rules that answer them.
//! - [`rate`]: rate limits by GCRA, the same arithmetic in every store.
//! - [`problems`]: every bad field of a request, named, with names' and ranges' checks.

pub mod ag_ui;
pub mod cache;
pub mod chain;
pub mod chain_input;
pub mod claude_code;
pub mod control;
pub mod event;
pub mod job_view;
pub mod jobs;
pub mod json;
pub mod locks;
pub mod permission_rules;
pub mod permissions;
pub mod problems;
pub mod rate;
pub mod session;
pub mod usage;
pub mod user_context;
pub mod workflow;

/// One invalid field of a request, reported in an error's `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

/// The one rule for every id a caller chooses (sessions, events, chains): 1 to `max`
/// characters, none of them a control character (ids reach logs, keys and headers).
pub fn check_id(field: &str, id: &str, max: usize) -> Result<(), FieldProblem> {
    let n = id.chars().count();
    if n == 0 || n > max || id.chars().any(char::is_control) {
        return Err(FieldProblem::new(
            field,
            format!("must be 1-{max} characters without control characters"),
        ));
    }
    Ok(())
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
