//! rootcast's WebSocket hub.
//!
//! Speaks Centrifugo's client protocol v2 (JSON) at `/connection/websocket` so the
//! official Centrifugo SDKs work unchanged, and Centrifugo's server HTTP API at
//! `/api/<method>`. See `docs/protocol.md` for what is supported and the code catalogue,
//! and `docs/ARCHITECTURE.md` for how the pieces fit.
//!
//! # Map
//! - [`protocol`]: wire types and encoding (no IO).
//! - [`codes`]: error, disconnect and unsubscribe codes.
//! - [`token`]: JWT verification.
//! - [`channel`]: channel names and namespace options.
//! - [`stream`]: one channel's offsets, epoch and history window (no IO, explicit time).
//! - [`broker`]: the [`Broker`](broker::Broker) trait and its guarantees;
//!   [`broker_memory`] implements it for one node. [`presence`]: who is in a channel.
//! - [`hub`]: subscriber shards and fan-out (encode once, share bytes).
//! - [`outbound`]: a connection's bounded output queue.
//! - [`client`]: a connection's protocol state and command handling (no socket).
//! - [`connection`]: the task that drives one WebSocket.
//! - [`node`]: the shared state of a hub process and the operations on channels.
//! - [`api`]: the server HTTP API. [`server`]: routes and graceful shutdown.
//! - [`metrics`], [`rate_limit`], [`rpc`].
//! - [`service`]: the domain services people use — logins, sending directives, unit
//!   inboxes, acknowledgements, the live acknowledgement map, reminders — behind the REST
//!   API (`/api/v1/…`) and RPC methods, each checked against the caller's role and scope.
//! - [`org`]: the organisation tree's types and rules, import/export formats, the demo
//!   organisation (no IO); [`directive`]: directives, targeting, the per-unit state
//!   machine and roll-ups (no IO); [`store`]: the durable store over SQLite or PostgreSQL.
//! - [`audit`]: the tamper-evident audit log's encoding, hash chain and check (no IO);
//!   the store appends to it in the transaction of each change it records.
//! - [`auth`]: roles, accounts, the scope checks of every API and RPC, password hashing
//!   and unit credentials (no IO).
//!
//! # Flow of a publication
//! `api` or `client` → [`Node::publish`](node::Node::publish) → `Broker::publish` (offset,
//! history) → [`Hub`](hub::Hub) encodes the push once → each subscriber's
//! [`Outbound`](outbound::Outbound) → its connection task writes the queue in one frame.

pub mod api;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod broker_memory;
pub mod channel;
pub mod client;
pub mod codes;
pub mod connection;
pub mod directive;
pub mod hub;
pub mod metrics;
pub mod node;
pub mod org;
pub mod outbound;
pub mod presence;
pub mod protocol;
pub mod rate_limit;
pub mod rpc;
pub mod server;
pub mod service;
pub mod store;
pub mod stream;
pub mod token;

pub use node::{Node, ServerPublish};
pub use rpc::RpcRegistry;
