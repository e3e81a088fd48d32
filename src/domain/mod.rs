//! The domain layer: what the gateway's data is and the rules it follows, with no I/O and no
//! import of anything above it. Stores persist these types, services combine stores around
//! them, and the HTTP and WebSocket edges parse into and render from them.
//!
//! - [`session`]: sessions, their stored fields, listing queries and the listing index.
//! - [`event`]: turning a posted body into a storable draft, reads and the resume rules.
//! - [`control`]: commands and input: validation and stored records.
//! - [`chain`]: the chain state machine and stats; [`chain_input`]: what moves a chain.

pub mod chain;
pub mod chain_input;
pub mod control;
pub mod event;
pub mod session;

/// One invalid field of a request, reported in an error's `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
