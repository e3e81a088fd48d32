//! Live delivery. The store's bus feeds one fan-out task per instance ([`fanout`]), which
//! hands each event to the [`hub::Hub`]; the hub serializes it once and pushes it into the
//! bounded queue of every local subscriber; each connection ([`ws`]) drains its queue to its
//! socket, or an SSE stream ([`sse`]) to its response body. The wire messages and limits live in [`protocol`]. Nothing here knows the HTTP
//! edge or the app: the upgrade (in `http::upgrade`) hands each connection a [`ws::WsContext`].

pub mod ag_ui;
pub mod compat;
pub mod fanout;
pub mod hub;
pub mod position;
pub mod protocol;
pub mod queue;
pub mod sse;
pub mod stamp;
pub mod tally;
pub mod ws;
