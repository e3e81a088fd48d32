//! Live delivery. The store's bus feeds one fan-out task per instance ([`fanout`]), which
//! hands each event to the [`hub::Hub`]; the hub serializes it once and pushes it into the
//! bounded queue of every local subscriber; each connection ([`ws`]) drains its queue to its
//! socket. The wire messages and limits live in [`protocol`]. Nothing here knows the HTTP
//! edge or the app: the upgrade (in `http::upgrade`) hands each connection a [`ws::WsContext`].

pub mod compat;
pub mod fanout;
pub mod hub;
pub mod protocol;
pub mod ws;
