//! Cutting off connections whose access was taken away: an account disabled or a room
//! credential revoked (`rootcast account disable|revoke`, which may run in another
//! process on the same store) stops REST and RPC calls at once, since each call looks the
//! principal up. A WebSocket, though, authenticated once with a token that stays valid for
//! hours; this sweep reads the revoked principals from the store every
//! [`REVOCATION_SWEEP`] and hands them to the node, which closes their connections with
//! 3508 "access revoked" and refuses their reconnects with the same code.

use std::sync::Arc;
use std::time::Duration;

use super::Services;
use crate::node::Node;

/// How often the store is asked which principals were revoked: the longest a disabled
/// account or revoked screen keeps receiving pushes.
pub const REVOCATION_SWEEP: Duration = Duration::from_secs(5);

impl Services {
    /// Keeps `node`'s set of revoked users current, forever (spawn it once per process).
    /// A store error is logged and the sweep tries again next time.
    pub async fn enforce_revocations(self: Arc<Self>, node: Arc<Node>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.store.revoked_principals().await {
                Ok(revoked) => {
                    let closed = node.revoke_users(revoked);
                    if closed > 0 {
                        tracing::info!(closed, "closed connections whose access was revoked");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read revoked accounts and credentials")
                }
            }
        }
    }
}
