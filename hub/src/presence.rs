//! Who is in a channel right now.
//!
//! [`PresenceStore`] is the interface (a Redis implementation comes with multi-node);
//! [`MemoryPresence`] keeps entries in sharded maps for one node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::broker::BrokerError;
use crate::broker_memory::shard_index;
use crate::protocol::{ClientInfo, PresenceStats};

#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    async fn add(&self, channel: &str, info: ClientInfo) -> Result<(), BrokerError>;
    async fn remove(&self, channel: &str, client: &str) -> Result<(), BrokerError>;
    /// Every client in the channel, by client ID.
    async fn presence(&self, channel: &str) -> Result<BTreeMap<String, ClientInfo>, BrokerError>;
    async fn stats(&self, channel: &str) -> Result<PresenceStats, BrokerError>;
}

const SHARDS: usize = 16;

/// Presence for one node. A plain `std` mutex per shard: never held across `.await`.
pub struct MemoryPresence {
    shards: Vec<Mutex<HashMap<String, HashMap<String, ClientInfo>>>>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        MemoryPresence {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl MemoryPresence {
    fn shard(
        &self,
        channel: &str,
    ) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, ClientInfo>>> {
        self.shards[shard_index(channel, SHARDS)]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn add(&self, channel: &str, info: ClientInfo) -> Result<(), BrokerError> {
        self.shard(channel)
            .entry(channel.to_owned())
            .or_default()
            .insert(info.client.clone(), info);
        Ok(())
    }

    async fn remove(&self, channel: &str, client: &str) -> Result<(), BrokerError> {
        let mut shard = self.shard(channel);
        if let Some(clients) = shard.get_mut(channel) {
            clients.remove(client);
            if clients.is_empty() {
                shard.remove(channel);
            }
        }
        Ok(())
    }

    async fn presence(&self, channel: &str) -> Result<BTreeMap<String, ClientInfo>, BrokerError> {
        Ok(self
            .shard(channel)
            .get(channel)
            .map(|clients| {
                clients
                    .iter()
                    .map(|(id, info)| (id.clone(), info.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn stats(&self, channel: &str) -> Result<PresenceStats, BrokerError> {
        let shard = self.shard(channel);
        let Some(clients) = shard.get(channel) else {
            return Ok(PresenceStats::default());
        };
        let users: HashSet<&str> = clients.values().map(|info| info.user.as_str()).collect();
        Ok(PresenceStats {
            num_clients: clients.len() as u32,
            num_users: users.len() as u32,
        })
    }
}
