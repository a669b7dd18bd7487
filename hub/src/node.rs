//! The [`Node`]: one hub process's shared state, and the operations the client protocol,
//! the server API and (later) the domain features perform on channels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rootcast_config::{Config, NamespaceOptions};

use crate::broker::{Broker, BrokerError, PublishOptions};
use crate::broker_memory::MemoryBroker;
use crate::channel;
use crate::codes::{ClientError, CustomDisconnect, Disconnect};
use crate::hub::{ConnHandle, Hub};
use crate::metrics::Metrics;
use crate::outbound::Control;
use crate::presence::{MemoryPresence, PresenceStore};
use crate::protocol::{ClientInfo, PresenceStats, Publication, RawJson, StreamPosition};
use crate::rpc::RpcRegistry;
use crate::stream::HistoryFilter;
use crate::token::{TokenError, TokenVerifier};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long an idempotent publish result is remembered.
const IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("token keys: {0}")]
    Token(#[from] TokenError),
}

/// A publication made by the server (API, domain features) rather than a client.
#[derive(Debug, Default)]
pub struct ServerPublish {
    pub skip_history: bool,
    pub tags: Option<BTreeMap<String, String>>,
    pub idempotency_key: Option<String>,
}

/// Told each time a connection enters or leaves a channel's presence (namespaces with
/// `presence` on), after the presence store was updated. The meeting attendance log is
/// the one observer (`hub/src/service/attendance.rs`). Called on the connection's own
/// task: it must return at once (queue the work, never block or await).
pub trait PresenceObserver: Send + Sync + 'static {
    fn joined(&self, channel: &str, info: &ClientInfo);
    fn left(&self, channel: &str, info: &ClientInfo);
}

/// A summary of this node for the `info` API and the stats channel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    pub uid: String,
    pub name: String,
    pub version: &'static str,
    pub num_clients: u32,
    pub num_users: u32,
    pub num_channels: u32,
    pub num_subs: u32,
    pub uptime: u32,
}

/// Open connections by key, and authenticated ones by user. One mutex: it is touched once
/// per connect and disconnect, never on the fan-out path, and never held across `.await`.
#[derive(Default)]
struct Registry {
    conns: HashMap<u64, Arc<ConnHandle>>,
    users: HashMap<String, Vec<Arc<ConnHandle>>>,
    authenticated: usize,
    /// Users whose account is disabled or credential revoked: refused at connect (their
    /// tokens may still be valid for hours). Set by [`Node::revoke_users`].
    revoked: HashSet<String>,
}

pub struct Node {
    config: Config,
    uid: String,
    name: String,
    started: Instant,
    pub(crate) hub: Arc<Hub>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) presence: Arc<dyn PresenceStore>,
    pub(crate) tokens: TokenVerifier,
    pub(crate) rpc: RpcRegistry,
    pub metrics: Arc<Metrics>,
    registry: Mutex<Registry>,
    shutting_down: std::sync::atomic::AtomicBool,
    /// Set once by [`Node::observe_presence`].
    presence_observer: std::sync::OnceLock<Arc<dyn PresenceObserver>>,
}

impl Node {
    /// A single-node hub: in-memory broker and presence.
    pub fn new(config: Config, rpc: RpcRegistry) -> Result<Arc<Node>, NodeError> {
        Self::with_engines(
            config,
            Arc::new(MemoryBroker::new()),
            Arc::new(MemoryPresence::default()),
            rpc,
        )
    }

    pub fn with_engines(
        config: Config,
        broker: Arc<dyn Broker>,
        presence: Arc<dyn PresenceStore>,
        rpc: RpcRegistry,
    ) -> Result<Arc<Node>, NodeError> {
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::new(metrics.clone(), config.channel.clone());
        broker.start(hub.clone());
        let uid = uuid::Uuid::new_v4().to_string();
        let name = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("rootcast-{}", &uid[..8]));
        Ok(Arc::new(Node {
            tokens: TokenVerifier::new(&config.client.token)?,
            config,
            uid,
            name,
            started: Instant::now(),
            hub,
            broker,
            presence,
            rpc,
            metrics,
            registry: Mutex::default(),
            shutting_down: Default::default(),
            presence_observer: std::sync::OnceLock::new(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options of the channel's namespace; 102 for an unknown namespace, 107 for a
    /// malformed name.
    pub fn namespace(&self, channel: &str) -> Result<&NamespaceOptions, ClientError> {
        channel::options_for(&self.config.channel, channel)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection so shutdown can reach it. Refused while shutting down.
    pub(crate) fn attach(&self, conn: &Arc<ConnHandle>) -> Result<(), Disconnect> {
        let mut registry = self.registry();
        if self.is_shutting_down() {
            return Err(Disconnect::SHUTDOWN);
        }
        registry.conns.insert(conn.key, conn.clone());
        Ok(())
    }

    /// Records that a connection authenticated as `conn.user()`, unless a connection
    /// limit forbids it.
    pub(crate) fn authenticate(&self, conn: &Arc<ConnHandle>) -> Result<(), Disconnect> {
        let limits = &self.config.client;
        let mut registry = self.registry();
        if registry.revoked.contains(conn.user()) {
            return Err(Disconnect::ACCESS_REVOKED);
        }
        if limits.connection_limit > 0 && registry.authenticated >= limits.connection_limit {
            return Err(Disconnect::CONNECTION_LIMIT);
        }
        let user_conns = registry.users.entry(conn.user().to_owned()).or_default();
        if limits.user_connection_limit > 0
            && !conn.user().is_empty()
            && user_conns.len() >= limits.user_connection_limit
        {
            return Err(Disconnect::CONNECTION_LIMIT);
        }
        user_conns.push(conn.clone());
        registry.authenticated += 1;
        Ok(())
    }

    /// Forgets a closed connection.
    pub(crate) fn detach(&self, conn: &ConnHandle) {
        let mut registry = self.registry();
        registry.conns.remove(&conn.key);
        let Some(user_conns) = registry.users.get_mut(conn.user()) else {
            return;
        };
        let before = user_conns.len();
        user_conns.retain(|c| c.key != conn.key);
        let removed = before - user_conns.len();
        if user_conns.is_empty() {
            registry.users.remove(conn.user());
        }
        registry.authenticated -= removed;
    }

    /// Connections of `user` (all of them, or the one with client ID `client`).
    fn user_connections(&self, user: &str, client: Option<&str>) -> Vec<Arc<ConnHandle>> {
        self.registry()
            .users
            .get(user)
            .map(|conns| {
                conns
                    .iter()
                    .filter(|c| client.is_none_or(|id| c.client_id == id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Publishes into a channel on behalf of the server. Returns the stream position, or
    /// `None` when the publication is not kept in history.
    pub async fn publish(
        &self,
        channel: &str,
        data: RawJson,
        options: ServerPublish,
    ) -> Result<Option<StreamPosition>, ClientError> {
        let ns = self.namespace(channel)?;
        let publication = Publication {
            data,
            info: None,
            offset: 0,
            tags: options.tags,
        };
        self.publish_with(
            channel,
            ns,
            publication,
            options.skip_history,
            options.idempotency_key,
        )
        .await
    }

    pub(crate) async fn publish_with(
        &self,
        channel: &str,
        ns: &NamespaceOptions,
        publication: Publication,
        skip_history: bool,
        idempotency_key: Option<String>,
    ) -> Result<Option<StreamPosition>, ClientError> {
        let options = PublishOptions {
            history_size: if skip_history { 0 } else { ns.history_size },
            history_ttl: if skip_history {
                Duration::ZERO
            } else {
                ns.history_ttl
            },
            history_meta_ttl: ns.history_meta_ttl,
            idempotency_key,
            idempotent_result_ttl: IDEMPOTENT_RESULT_TTL,
        };
        self.broker
            .publish(channel, publication, &options)
            .await
            .map_err(internal)
    }

    /// Reads a channel's history. 108 when the namespace keeps none; 112 when `since` is
    /// no longer covered.
    pub async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
    ) -> Result<(Vec<Arc<Publication>>, StreamPosition), ClientError> {
        let ns = self.namespace(channel)?;
        if ns.history_size == 0 || ns.history_ttl.is_zero() {
            return Err(ClientError::NOT_AVAILABLE);
        }
        match self
            .broker
            .history(channel, &filter, ns.history_meta_ttl)
            .await
        {
            Ok(found) => Ok(found),
            Err(BrokerError::Unrecoverable) => Err(ClientError::UNRECOVERABLE_POSITION),
            Err(e) => Err(internal(e)),
        }
    }

    pub async fn remove_history(&self, channel: &str) -> Result<(), ClientError> {
        self.namespace(channel)?;
        self.broker.remove_history(channel).await.map_err(internal)
    }

    /// 108 when the namespace does not keep presence.
    pub async fn presence(
        &self,
        channel: &str,
    ) -> Result<BTreeMap<String, ClientInfo>, ClientError> {
        if !self.namespace(channel)?.presence {
            return Err(ClientError::NOT_AVAILABLE);
        }
        self.presence.presence(channel).await.map_err(internal)
    }

    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, ClientError> {
        if !self.namespace(channel)?.presence {
            return Err(ClientError::NOT_AVAILABLE);
        }
        self.presence.stats(channel).await.map_err(internal)
    }

    /// Installs the observer of presence joins and leaves; `false` when one is installed
    /// already (there is at most one).
    pub fn observe_presence(&self, observer: Arc<dyn PresenceObserver>) -> bool {
        self.presence_observer.set(observer).is_ok()
    }

    /// Tells the presence observer, if any, that a connection entered `channel`.
    pub(crate) fn presence_joined(&self, channel: &str, info: &ClientInfo) {
        if let Some(observer) = self.presence_observer.get() {
            observer.joined(channel, info);
        }
    }

    /// Tells the presence observer, if any, that a connection left `channel`.
    pub(crate) fn presence_left(&self, channel: &str, info: &ClientInfo) {
        if let Some(observer) = self.presence_observer.get() {
            observer.left(channel, info);
        }
    }

    /// Channels with subscribers on this node and their subscriber counts.
    pub fn channels(&self) -> Vec<(String, usize)> {
        self.hub.channels()
    }

    pub fn info(&self) -> NodeInfo {
        let (num_clients, num_users) = {
            let registry = self.registry();
            (registry.authenticated, registry.users.len())
        };
        NodeInfo {
            uid: self.uid.clone(),
            name: self.name.clone(),
            version: VERSION,
            num_clients: num_clients as u32,
            num_users: num_users as u32,
            num_channels: self.hub.channel_count() as u32,
            num_subs: self.metrics.subscriptions.get().max(0) as u32,
            uptime: self.started.elapsed().as_secs() as u32,
        }
    }

    /// Disconnects a user's connections (or one of them). Returns how many were told.
    pub fn disconnect(
        &self,
        user: &str,
        client: Option<&str>,
        disconnect: CustomDisconnect,
    ) -> usize {
        let conns = self.user_connections(user, client);
        for conn in &conns {
            conn.outbound.close(disconnect.clone());
        }
        conns.len()
    }

    /// Replaces the set of users whose access was revoked: their open connections are
    /// closed with 3508 "access revoked" and new ones are refused with it, until a later
    /// set leaves them out. Returns how many open connections were told to close.
    pub fn revoke_users(&self, revoked: HashSet<String>) -> usize {
        let closing: Vec<Arc<ConnHandle>> = {
            let mut registry = self.registry();
            let closing = revoked
                .iter()
                .filter_map(|user| registry.users.get(user))
                .flatten()
                .cloned()
                .collect();
            registry.revoked = revoked;
            closing
        };
        for conn in &closing {
            conn.outbound.close(Disconnect::ACCESS_REVOKED.into());
        }
        closing.len()
    }

    /// Subscribes a user's connections to a channel on the server's behalf (they receive a
    /// `subscribe` push). 102 for an unknown namespace.
    /// `data` is handed to the client in the push.
    pub fn subscribe_user(
        &self,
        user: &str,
        channel: &str,
        client: Option<&str>,
        data: Option<&RawJson>,
    ) -> Result<usize, ClientError> {
        self.namespace(channel)?;
        let conns = self.user_connections(user, client);
        for conn in &conns {
            conn.outbound.control(Control::Subscribe {
                channel: channel.to_owned(),
                data: data.cloned(),
            });
        }
        Ok(conns.len())
    }

    /// Unsubscribes a user's connections from a channel (an `unsubscribe` push, code 2000).
    pub fn unsubscribe_user(
        &self,
        user: &str,
        channel: &str,
        client: Option<&str>,
    ) -> Result<usize, ClientError> {
        self.namespace(channel)?;
        let conns = self.user_connections(user, client);
        for conn in &conns {
            conn.outbound
                .control(Control::Unsubscribe(channel.to_owned()));
        }
        Ok(conns.len())
    }

    /// Stops accepting connects and tells every connection to close with 3001 "shutdown".
    /// Idempotent.
    pub fn begin_shutdown(&self) {
        let registry = self.registry();
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for conn in registry.conns.values() {
            conn.outbound.close(Disconnect::SHUTDOWN.into());
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Open connections, authenticated or not.
    pub fn connection_count(&self) -> i64 {
        self.metrics.connections.get()
    }
}

fn internal(error: BrokerError) -> ClientError {
    tracing::warn!(%error, "broker error");
    ClientError::INTERNAL
}
