//! One client connection's protocol state: what it is authenticated as, what it is
//! subscribed to, and how each command is answered.
//!
//! The session never touches the socket: replies and pushes go into the connection's
//! [`Outbound`](crate::outbound::Outbound) queue, and a fatal problem is returned as the
//! [`Disconnect`] to close with. Time comes in as `now` (tokio's clock, so tests can
//! pause it). The driver in [`crate::connection`] owns the socket and the timers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rootcast_config::NamespaceOptions;
use tokio::time::Instant;

use crate::channel;
use crate::codes::{ClientError, CustomDisconnect, Disconnect, Unsubscribe};
use crate::hub::ConnHandle;
use crate::node::{Node, VERSION};
use crate::outbound::Control;
use crate::protocol::{
    self, ChannelRequest, ClientInfo, Command, ConnectRequest, ConnectResult, HistoryRequest,
    HistoryResult, PresenceResult, Publication, PublishRequest, RawJson, RefreshRequest,
    RefreshResult, RpcRequest, RpcResult, SubRefreshRequest, SubRefreshResult, SubscribeRequest,
    SubscribeResult,
};
use crate::rate_limit::TokenBucket;
use crate::rpc::{self, RpcCaller};
use crate::stream::HistoryFilter;
use crate::token::TokenError;

/// What a subscription remembers.
struct Subscription {
    /// Channel info from the subscription token, attached to presence and publications.
    chan_info: Option<RawJson>,
    /// When the subscription token expires (checked with `expired_close_delay` grace).
    expires_at: Option<Instant>,
    presence: bool,
    join_leave: bool,
}

/// A connection's subscriptions. Connections hold a few, so a vector beats a hash map
/// both in memory (about 70 bytes for one entry instead of about 270: this is per
/// connection, thousands of times over) and in lookup time.
#[derive(Default)]
struct Subscriptions(Vec<(String, Subscription)>);

impl Subscriptions {
    fn get(&self, channel: &str) -> Option<&Subscription> {
        self.0.iter().find(|(c, _)| c == channel).map(|(_, s)| s)
    }

    fn get_mut(&mut self, channel: &str) -> Option<&mut Subscription> {
        self.0
            .iter_mut()
            .find(|(c, _)| c == channel)
            .map(|(_, s)| s)
    }

    fn contains_key(&self, channel: &str) -> bool {
        self.get(channel).is_some()
    }

    /// Adds a subscription; the caller has checked it is not there yet.
    fn insert(&mut self, channel: String, subscription: Subscription) {
        self.0.push((channel, subscription));
    }

    fn remove(&mut self, channel: &str) -> Option<Subscription> {
        let index = self.0.iter().position(|(c, _)| c == channel)?;
        Some(self.0.swap_remove(index).1)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &Subscription)> {
        self.0.iter().map(|(c, s)| (c, s))
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(c, _)| c)
    }

    fn values(&self) -> impl Iterator<Item = &Subscription> {
        self.0.iter().map(|(_, s)| s)
    }
}

/// The authenticated identity of a connection.
struct Identity {
    user: String,
    conn_info: Option<RawJson>,
    expires_at: Option<Instant>,
}

pub struct ClientSession {
    node: Arc<Node>,
    handle: Arc<ConnHandle>,
    identity: Option<Identity>,
    subscriptions: Subscriptions,
    created: Instant,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    rate: Option<TokenBucket>,
    rate_rejections: u32,
}

/// Parameters of one subscription attempt, from a subscribe command, a connect command's
/// `subs`, or the server.
#[derive(Default)]
struct SubscribeParams {
    recover: bool,
    epoch: String,
    offset: u64,
    recoverable: bool,
    positioned: bool,
    join_leave: bool,
    chan_info: Option<RawJson>,
    expires_at: Option<Instant>,
}

impl From<&SubscribeRequest> for SubscribeParams {
    fn from(req: &SubscribeRequest) -> Self {
        SubscribeParams {
            recover: req.recover,
            epoch: req.epoch.clone(),
            offset: req.offset,
            recoverable: req.recoverable,
            positioned: req.positioned,
            join_leave: req.join_leave,
            ..Default::default()
        }
    }
}

type Outcome = Result<(), CustomDisconnect>;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Converts a token's unix expiry into a deadline on tokio's clock, and the TTL to report.
fn expiry(unix_expires_at: Option<u64>, now: Instant) -> (Option<Instant>, u32) {
    match unix_expires_at {
        None => (None, 0),
        Some(at) => {
            let ttl = at.saturating_sub(unix_now());
            (
                Some(now + Duration::from_secs(ttl)),
                ttl.min(u64::from(u32::MAX)) as u32,
            )
        }
    }
}

impl ClientSession {
    pub fn new(node: Arc<Node>, handle: Arc<ConnHandle>, now: Instant) -> Self {
        let limits = &node.config().client;
        let rate = (limits.command_rate_limit > 0).then(|| {
            TokenBucket::new(
                limits.command_rate_limit,
                limits.command_rate_burst,
                now.into_std(),
            )
        });
        ClientSession {
            node,
            handle,
            identity: None,
            subscriptions: Subscriptions::default(),
            created: now,
            next_ping: None,
            pong_deadline: None,
            rate,
            rate_rejections: 0,
        }
    }

    fn push(&self, frame: Bytes) {
        self.handle.outbound.push(frame);
    }

    fn reply<T: serde::Serialize>(&self, id: u32, method: &str, result: &T) {
        if id != 0 {
            self.push(protocol::encode_reply(id, method, result));
        }
    }

    fn reply_error(&self, id: u32, error: &ClientError) {
        if id != 0 {
            self.push(protocol::encode_error(id, error));
        }
    }

    /// When the driver must call [`ClientSession::on_timer`] next.
    pub fn next_deadline(&self) -> Instant {
        let delay = self.node.config().client.expired_close_delay;
        let Some(identity) = &self.identity else {
            return self.created + self.node.config().client.stale_close_delay;
        };
        [
            self.next_ping,
            self.pong_deadline,
            identity.expires_at.map(|at| at + delay),
        ]
        .into_iter()
        .chain(
            self.subscriptions
                .values()
                .map(|s| s.expires_at.map(|at| at + delay)),
        )
        .flatten()
        .min()
        .unwrap_or(self.created + Duration::from_secs(3600))
    }

    /// Pings, checks pongs and expiries. Returns the disconnect when one is due.
    pub async fn on_timer(&mut self, now: Instant) -> Outcome {
        let node = self.node.clone();
        let client = &node.config().client;
        let Some(identity) = &self.identity else {
            if now >= self.created + client.stale_close_delay {
                return Err(Disconnect::STALE.into());
            }
            return Ok(());
        };
        if self.pong_deadline.is_some_and(|at| now >= at) {
            return Err(Disconnect::NO_PONG.into());
        }
        if identity
            .expires_at
            .is_some_and(|at| now >= at + client.expired_close_delay)
        {
            return Err(Disconnect::EXPIRED.into());
        }
        let expired: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| {
                s.expires_at
                    .is_some_and(|at| now >= at + client.expired_close_delay)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for channel in expired {
            self.unsubscribe_channel(&channel).await;
            self.push(protocol::encode_unsubscribe_push(
                &channel,
                Unsubscribe::EXPIRED,
            ));
        }
        if self.next_ping.is_some_and(|at| now >= at) {
            self.push(Bytes::from_static(protocol::PING));
            self.next_ping = Some(now + client.ping_interval);
            if self.pong_deadline.is_none() {
                self.pong_deadline = Some(now + client.pong_timeout);
            }
        }
        Ok(())
    }

    /// Handles one WebSocket text message: one or more newline-separated commands.
    pub async fn handle_frame(&mut self, frame: &[u8], now: Instant) -> Outcome {
        for line in protocol::command_lines(frame) {
            let command = protocol::parse_command(line).map_err(|error| {
                tracing::debug!(client = %self.handle.client_id, %error, "malformed command");
                CustomDisconnect::from(Disconnect::BAD_REQUEST)
            })?;
            self.node.metrics.messages_in.inc();
            self.handle_command(command, now).await?;
            if self.handle.outbound.is_closing() {
                break;
            }
        }
        Ok(())
    }

    async fn handle_command(&mut self, command: Command, now: Instant) -> Outcome {
        let id = command.id;
        let method = method_name(&command);
        if method == "pong" {
            self.pong_deadline = None;
            return Ok(());
        }
        if self.identity.is_none() && method != "connect" {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        if let Some(rate) = &mut self.rate
            && method != "connect"
        {
            if !rate.try_take(now.into_std()) {
                self.rate_rejections += 1;
                if self.rate_rejections > self.node.config().client.command_rate_disconnect_after {
                    return Err(Disconnect::TOO_MANY_REQUESTS.into());
                }
                self.reply_error(id, &ClientError::TOO_MANY_REQUESTS);
                return Ok(());
            }
            self.rate_rejections = 0;
        }
        let started = std::time::Instant::now();
        let result = match command {
            Command {
                connect: Some(req), ..
            } => self.connect(id, req, now).await,
            Command {
                subscribe: Some(req),
                ..
            } => self.subscribe(id, req, now).await,
            Command {
                unsubscribe: Some(req),
                ..
            } => {
                self.unsubscribe_command(id, req).await;
                Ok(())
            }
            Command {
                publish: Some(req), ..
            } => self.publish(id, req).await,
            Command {
                presence: Some(req),
                ..
            } => self.presence(id, req, false).await,
            Command {
                presence_stats: Some(req),
                ..
            } => self.presence(id, req, true).await,
            Command {
                history: Some(req), ..
            } => self.history(id, req).await,
            Command { ping: Some(_), .. } => {
                self.reply(id, "ping", &serde_json::json!({}));
                Ok(())
            }
            // Asynchronous messages have no handler yet: accepted and dropped, as
            // Centrifugo does without a proxy.
            Command { send: Some(_), .. } => Ok(()),
            Command { rpc: Some(req), .. } => {
                self.rpc(id, req).await;
                Ok(())
            }
            Command {
                refresh: Some(req), ..
            } => self.refresh(id, req, now),
            Command {
                sub_refresh: Some(req),
                ..
            } => self.sub_refresh(id, req, now),
            _ => {
                self.reply_error(id, &ClientError::METHOD_NOT_FOUND);
                Ok(())
            }
        };
        self.node
            .metrics
            .command_duration
            .get_or_create(&crate::metrics::MethodLabel { method })
            .observe(started.elapsed().as_secs_f64());
        result
    }

    fn identity(&self) -> &Identity {
        // Every command but connect is refused before authentication (handle_command).
        self.identity
            .as_ref()
            .expect("commands other than connect need an identity")
    }

    fn user(&self) -> &str {
        self.identity.as_ref().map_or("", |i| i.user.as_str())
    }

    async fn connect(&mut self, id: u32, req: ConnectRequest, now: Instant) -> Outcome {
        if self.identity.is_some() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let node = self.node.clone();
        let client_config = &node.config().client;
        let (user, conn_info, expires_at, channels) = if req.token.is_empty() {
            if !client_config.allow_anonymous_connect_without_token {
                return Err(Disconnect::INVALID_TOKEN.into());
            }
            (String::new(), None, None, Vec::new())
        } else {
            match self.node.tokens.connection(&req.token) {
                Ok(claims) => {
                    let expires_at = claims.expires_at();
                    (claims.sub, claims.info, expires_at, claims.channels)
                }
                Err(TokenError::Expired) => {
                    self.reply_error(id, &ClientError::TOKEN_EXPIRED);
                    return Ok(());
                }
                Err(TokenError::Invalid(reason)) => {
                    tracing::debug!(client = %self.handle.client_id, %reason, "invalid connection token");
                    return Err(Disconnect::INVALID_TOKEN.into());
                }
            }
        };
        if channels.len() > client_config.channel_limit {
            return Err(Disconnect::CHANNEL_LIMIT.into());
        }
        let (expires_at, ttl) = expiry(expires_at, now);
        let _ = self.handle.user.set(user.clone());
        self.node.authenticate(&self.handle)?;
        self.identity = Some(Identity {
            user,
            conn_info,
            expires_at,
        });
        self.next_ping = Some(now + client_config.ping_interval);

        // Server-side subscriptions from the token, recovered from the positions the
        // client sent in `subs`.
        let mut subs = BTreeMap::new();
        let mut covered = Vec::new();
        for channel in channels {
            let params = req
                .subs
                .get(&channel)
                .map(SubscribeParams::from)
                .unwrap_or_default();
            match self.subscribe_channel(&channel, params).await {
                Ok((result, offset)) => {
                    covered.push((channel.clone(), offset));
                    subs.insert(channel, result);
                }
                Err(error)
                    if error == ClientError::UNKNOWN_CHANNEL
                        || error == ClientError::BAD_REQUEST =>
                {
                    tracing::warn!(%channel, "token names a channel of no configured namespace; skipped");
                }
                Err(_) => {
                    self.cancel_syncs(&covered);
                    return Err(Disconnect::SERVER_ERROR.into());
                }
            }
        }
        let result = ConnectResult {
            client: self.handle.client_id.clone(),
            version: VERSION,
            expires: expires_at.is_some(),
            ttl,
            data: None,
            subs,
            // Whole seconds on the wire; a sub-second interval is reported as 1.
            ping: client_config.ping_interval.as_secs().max(1) as u32,
            pong: true,
            node: self.node.name().to_owned(),
        };
        let reply = protocol::encode_reply(id, "connect", &result);
        let covered_refs: Vec<(&str, u64)> =
            covered.iter().map(|(c, o)| (c.as_str(), *o)).collect();
        self.handle.outbound.finish_sync(&covered_refs, reply);
        for (channel, _) in &covered {
            self.announce_join(channel).await;
        }
        Ok(())
    }

    fn cancel_syncs(&self, channels: &[(String, u64)]) {
        for (channel, _) in channels {
            self.handle.outbound.cancel_sync(channel);
        }
    }

    /// Decides whether this client may subscribe to `channel` without a subscription
    /// token.
    fn may_subscribe_without_token(&self, channel: &str, ns: &NamespaceOptions) -> bool {
        let user = self.user();
        if ns.allow_user_limited_channels
            && let Some(allowed) = channel::user_limited_allows(channel, user)
        {
            return allowed;
        }
        if ns.protected {
            return false;
        }
        if user.is_empty() {
            ns.allow_subscribe_for_anonymous
        } else {
            ns.allow_subscribe_for_client
        }
    }

    async fn subscribe(&mut self, id: u32, req: SubscribeRequest, now: Instant) -> Outcome {
        let channel = req.channel.as_str();
        let ns = match self.node.namespace(channel) {
            Ok(ns) => ns,
            Err(error) => {
                self.reply_error(id, &error);
                return Ok(());
            }
        };
        if self.subscriptions.contains_key(channel) {
            self.reply_error(id, &ClientError::ALREADY_SUBSCRIBED);
            return Ok(());
        }
        if self.subscriptions.len() >= self.node.config().client.channel_limit {
            self.reply_error(id, &ClientError::LIMIT_EXCEEDED);
            return Ok(());
        }
        let mut params = SubscribeParams::from(&req);
        if req.token.is_empty() {
            if !self.may_subscribe_without_token(channel, ns) {
                self.reply_error(id, &ClientError::PERMISSION_DENIED);
                return Ok(());
            }
        } else {
            match self.node.tokens.subscription(&req.token) {
                Ok(claims) if claims.channel == channel && claims.sub == self.user() => {
                    let (expires_at, _) = expiry(claims.expires_at(), now);
                    params.expires_at = expires_at;
                    params.chan_info = claims.info;
                }
                Ok(_) => return Err(Disconnect::INVALID_TOKEN.into()),
                Err(TokenError::Expired) => {
                    self.reply_error(id, &ClientError::TOKEN_EXPIRED);
                    return Ok(());
                }
                Err(TokenError::Invalid(reason)) => {
                    tracing::debug!(client = %self.handle.client_id, %reason, "invalid subscription token");
                    return Err(Disconnect::INVALID_TOKEN.into());
                }
            }
        }
        let ttl = params
            .expires_at
            .map_or(0, |at| at.saturating_duration_since(now).as_secs() as u32);
        match self.subscribe_channel(channel, params).await {
            Ok((mut result, covered)) => {
                result.expires = ttl > 0;
                result.ttl = ttl;
                let reply = protocol::encode_reply(id, "subscribe", &result);
                self.handle
                    .outbound
                    .finish_sync(&[(channel, covered)], reply);
                self.announce_join(channel).await;
            }
            Err(error) => self.reply_error(id, &error),
        }
        Ok(())
    }

    /// Subscribes this connection to `channel` (permissions already checked) and reads
    /// what the reply must carry. The channel is left syncing: the caller queues the
    /// reply with `finish_sync` and the returned covered offset.
    async fn subscribe_channel(
        &mut self,
        channel: &str,
        params: SubscribeParams,
    ) -> Result<(SubscribeResult, u64), ClientError> {
        let node = self.node.clone();
        let ns = node.namespace(channel)?;
        if self.subscriptions.contains_key(channel) {
            return Err(ClientError::ALREADY_SUBSCRIBED);
        }
        let recoverable = ns.force_recovery || (ns.allow_recovery && params.recoverable);
        let positioned =
            recoverable || ns.force_positioning || (ns.allow_positioning && params.positioned);
        let join_leave_push = ns.join_leave && (ns.force_push_join_leave || params.join_leave);

        let outbound = &self.handle.outbound;
        outbound.begin_sync(channel);
        let (added, first) = node.hub.add(channel, &self.handle, join_leave_push);
        if !added {
            outbound.cancel_sync(channel);
            return Err(ClientError::ALREADY_SUBSCRIBED);
        }
        let undo = |error: ClientError| {
            if node.hub.remove(channel, self.handle.key) {
                let broker = node.broker.clone();
                let channel = channel.to_owned();
                tokio::spawn(async move { broker.unsubscribe(&channel).await });
            }
            outbound.cancel_sync(channel);
            error
        };
        if first && let Err(error) = node.broker.subscribe(channel).await {
            tracing::warn!(%channel, %error, "broker subscribe failed");
            return Err(undo(ClientError::INTERNAL));
        }

        let mut result = SubscribeResult {
            recoverable,
            positioned,
            data: None,
            ..Default::default()
        };
        let mut covered = 0;
        if positioned {
            let position_only = HistoryFilter {
                limit: Some(0),
                ..Default::default()
            };
            let since = (recoverable && params.recover).then(|| HistoryFilter {
                since: Some(protocol::StreamPosition {
                    offset: params.offset,
                    epoch: params.epoch.clone(),
                }),
                limit: None,
                reverse: false,
            });
            result.was_recovering = since.is_some();
            let read = match &since {
                Some(filter) => match node
                    .broker
                    .history(channel, filter, ns.history_meta_ttl)
                    .await
                {
                    Ok(found) => {
                        result.recovered = true;
                        Ok(found)
                    }
                    Err(crate::broker::BrokerError::Unrecoverable) => {
                        node.broker
                            .history(channel, &position_only, ns.history_meta_ttl)
                            .await
                    }
                    Err(e) => Err(e),
                },
                None => {
                    node.broker
                        .history(channel, &position_only, ns.history_meta_ttl)
                        .await
                }
            };
            match read {
                Ok((publications, position)) => {
                    covered = position.offset;
                    result.offset = position.offset;
                    result.epoch = position.epoch;
                    result.publications = publications;
                }
                Err(error) => {
                    tracing::warn!(%channel, %error, "history read for subscribe failed");
                    return Err(undo(ClientError::INTERNAL));
                }
            }
        }

        if ns.presence {
            let info = self.client_info(params.chan_info.clone());
            if let Err(error) = node.presence.add(channel, info.clone()).await {
                tracing::warn!(%channel, %error, "presence add failed");
            }
            node.presence_joined(channel, &info);
        }
        self.subscriptions.insert(
            channel.to_owned(),
            Subscription {
                chan_info: params.chan_info,
                expires_at: params.expires_at,
                presence: ns.presence,
                join_leave: ns.join_leave,
            },
        );
        Ok((result, covered))
    }

    /// Announces this client's join to the channel, when the namespace has join/leave
    /// events. Called after the subscribe reply (or push) is queued, so the client sees
    /// its reply before its own join.
    async fn announce_join(&self, channel: &str) {
        let Some(subscription) = self.subscriptions.get(channel) else {
            return;
        };
        if !subscription.join_leave {
            return;
        }
        let info = self.client_info(subscription.chan_info.clone());
        if let Err(error) = self.node.broker.publish_join(channel, &info).await {
            tracing::warn!(%channel, %error, "join publish failed");
        }
    }

    /// This connection as presence, join/leave and publications show it.
    fn client_info(&self, chan_info: Option<RawJson>) -> ClientInfo {
        ClientInfo {
            user: self.user().to_owned(),
            client: self.handle.client_id.clone(),
            conn_info: self.identity.as_ref().and_then(|i| i.conn_info.clone()),
            chan_info,
        }
    }

    async fn unsubscribe_command(&mut self, id: u32, req: ChannelRequest) {
        self.unsubscribe_channel(&req.channel).await;
        self.reply(id, "unsubscribe", &serde_json::json!({}));
    }

    /// Ends a subscription: leaves the hub, presence, and announces the leave.
    async fn unsubscribe_channel(&mut self, channel: &str) {
        let Some(subscription) = self.subscriptions.remove(channel) else {
            return;
        };
        let node = &self.node;
        if node.hub.remove(channel, self.handle.key)
            && let Err(error) = node.broker.unsubscribe(channel).await
        {
            tracing::warn!(%channel, %error, "broker unsubscribe failed");
        }
        if subscription.presence {
            if let Err(error) = node.presence.remove(channel, &self.handle.client_id).await {
                tracing::warn!(%channel, %error, "presence remove failed");
            }
            node.presence_left(channel, &self.client_info(subscription.chan_info.clone()));
        }
        if subscription.join_leave {
            let info = self.client_info(subscription.chan_info);
            if let Err(error) = node.broker.publish_leave(channel, &info).await {
                tracing::warn!(%channel, %error, "leave publish failed");
            }
        }
    }

    async fn publish(&mut self, id: u32, req: PublishRequest) -> Outcome {
        let channel = req.channel.as_str();
        let ns = match self.node.namespace(channel) {
            Ok(ns) => ns,
            Err(error) => {
                self.reply_error(id, &error);
                return Ok(());
            }
        };
        let subscription = self.subscriptions.get(channel);
        let allowed = (!self.user().is_empty() || ns.allow_publish_for_anonymous)
            && (ns.allow_publish_for_client
                || (ns.allow_publish_for_subscriber && subscription.is_some()));
        if !allowed {
            self.reply_error(id, &ClientError::PERMISSION_DENIED);
            return Ok(());
        }
        let identity = self.identity();
        let publication = Publication {
            data: req.data,
            info: Some(ClientInfo {
                user: identity.user.clone(),
                client: self.handle.client_id.clone(),
                conn_info: identity.conn_info.clone(),
                chan_info: subscription.and_then(|s| s.chan_info.clone()),
            }),
            offset: 0,
            tags: None,
        };
        let node = self.node.clone();
        match node
            .publish_with(channel, ns, publication, false, None)
            .await
        {
            Ok(_) => self.reply(id, "publish", &serde_json::json!({})),
            Err(error) => self.reply_error(id, &error),
        }
        Ok(())
    }

    /// Whether the client may read presence or history of `channel`, given the
    /// namespace's `(…_for_client, …_for_subscriber, …_for_anonymous)` options for it:
    /// anonymous clients need the `…_for_anonymous` option too.
    fn check_read(
        &self,
        channel: &str,
        options: impl Fn(&NamespaceOptions) -> (bool, bool, bool),
    ) -> Result<(), ClientError> {
        let (for_client, for_subscriber, for_anonymous) = options(self.node.namespace(channel)?);
        let allowed = (!self.user().is_empty() || for_anonymous)
            && (for_client || (for_subscriber && self.subscriptions.contains_key(channel)));
        if allowed {
            Ok(())
        } else {
            Err(ClientError::PERMISSION_DENIED)
        }
    }

    async fn presence(&mut self, id: u32, req: ChannelRequest, stats: bool) -> Outcome {
        let channel = req.channel.as_str();
        let allowed = self.check_read(channel, |ns| {
            (
                ns.allow_presence_for_client,
                ns.allow_presence_for_subscriber,
                ns.allow_presence_for_anonymous,
            )
        });
        if let Err(error) = allowed {
            self.reply_error(id, &error);
            return Ok(());
        }
        if stats {
            match self.node.presence_stats(channel).await {
                Ok(stats) => self.reply(id, "presence_stats", &stats),
                Err(error) => self.reply_error(id, &error),
            }
        } else {
            match self.node.presence(channel).await {
                Ok(presence) => self.reply(
                    id,
                    "presence",
                    &PresenceResult {
                        presence: &presence,
                    },
                ),
                Err(error) => self.reply_error(id, &error),
            }
        }
        Ok(())
    }

    async fn history(&mut self, id: u32, req: HistoryRequest) -> Outcome {
        let channel = req.channel.as_str();
        let allowed = self.check_read(channel, |ns| {
            (
                ns.allow_history_for_client,
                ns.allow_history_for_subscriber,
                ns.allow_history_for_anonymous,
            )
        });
        if let Err(error) = allowed {
            self.reply_error(id, &error);
            return Ok(());
        }
        let filter = history_filter(req.limit, req.since, req.reverse);
        match self.node.history(channel, filter).await {
            Ok((publications, position)) => self.reply(
                id,
                "history",
                &HistoryResult {
                    publications: &publications,
                    epoch: &position.epoch,
                    offset: position.offset,
                },
            ),
            Err(error) => self.reply_error(id, &error),
        }
        Ok(())
    }

    async fn rpc(&mut self, id: u32, req: RpcRequest) {
        let Some(handler) = self.node.rpc.get(&req.method).cloned() else {
            self.reply_error(id, &ClientError::METHOD_NOT_FOUND);
            return;
        };
        let caller = RpcCaller {
            user: self.user().to_owned(),
            client: self.handle.client_id.clone(),
            node: self.node.clone(),
        };
        match handler(caller, req.data.unwrap_or_else(rpc::null)).await {
            Ok(data) => self.reply(
                id,
                "rpc",
                &RpcResult {
                    data: data.as_deref(),
                },
            ),
            Err(error) => self.reply_error(id, &error),
        }
    }

    fn refresh(&mut self, id: u32, req: RefreshRequest, now: Instant) -> Outcome {
        let claims = match self.node.tokens.connection(&req.token) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => {
                self.reply_error(id, &ClientError::TOKEN_EXPIRED);
                return Ok(());
            }
            Err(TokenError::Invalid(_)) => return Err(Disconnect::INVALID_TOKEN.into()),
        };
        if claims.sub != self.user() {
            return Err(Disconnect::INVALID_TOKEN.into());
        }
        let (expires_at, ttl) = expiry(claims.expires_at(), now);
        if let Some(identity) = self.identity.as_mut() {
            identity.expires_at = expires_at;
            if claims.info.is_some() {
                identity.conn_info = claims.info;
            }
        }
        let result = RefreshResult {
            client: self.handle.client_id.clone(),
            version: VERSION,
            expires: expires_at.is_some(),
            ttl,
        };
        self.reply(id, "refresh", &result);
        Ok(())
    }

    fn sub_refresh(&mut self, id: u32, req: SubRefreshRequest, now: Instant) -> Outcome {
        if !self.subscriptions.contains_key(&req.channel) {
            self.reply_error(id, &ClientError::PERMISSION_DENIED);
            return Ok(());
        }
        let claims = match self.node.tokens.subscription(&req.token) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => {
                self.reply_error(id, &ClientError::TOKEN_EXPIRED);
                return Ok(());
            }
            Err(TokenError::Invalid(_)) => return Err(Disconnect::INVALID_TOKEN.into()),
        };
        if claims.channel != req.channel || claims.sub != self.user() {
            return Err(Disconnect::INVALID_TOKEN.into());
        }
        let (expires_at, ttl) = expiry(claims.expires_at(), now);
        if let Some(subscription) = self.subscriptions.get_mut(&req.channel) {
            subscription.expires_at = expires_at;
        }
        self.reply(
            id,
            "sub_refresh",
            &SubRefreshResult {
                expires: expires_at.is_some(),
                ttl,
            },
        );
        Ok(())
    }

    /// Acts on a request from the server API.
    pub async fn on_control(&mut self, control: Control) -> Outcome {
        if self.identity.is_none() {
            return Ok(());
        }
        match control {
            Control::Subscribe { channel, data } => {
                if self.subscriptions.contains_key(&channel) {
                    return Ok(());
                }
                if self.subscriptions.len() >= self.node.config().client.channel_limit {
                    return Err(Disconnect::CHANNEL_LIMIT.into());
                }
                match self
                    .subscribe_channel(&channel, SubscribeParams::default())
                    .await
                {
                    Ok((mut result, covered)) => {
                        result.data = data;
                        let push = protocol::encode_push(&channel, "subscribe", &result);
                        self.handle
                            .outbound
                            .finish_sync(&[(&channel, covered)], push);
                        self.announce_join(&channel).await;
                    }
                    Err(error) => {
                        tracing::warn!(%channel, %error, "server-side subscribe failed");
                    }
                }
            }
            Control::Unsubscribe(channel) => {
                if self.subscriptions.contains_key(&channel) {
                    self.unsubscribe_channel(&channel).await;
                    self.push(protocol::encode_unsubscribe_push(
                        &channel,
                        Unsubscribe::SERVER,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Releases everything the connection held. Called once when it closes.
    pub async fn close(&mut self) {
        let channels: Vec<String> = self.subscriptions.keys().cloned().collect();
        for channel in channels {
            self.unsubscribe_channel(&channel).await;
        }
        self.node.detach(&self.handle);
    }
}

/// Client protocol history limits: negative for all, 0 for the position only.
pub fn history_filter(
    limit: i32,
    since: Option<protocol::StreamPosition>,
    reverse: bool,
) -> HistoryFilter {
    HistoryFilter {
        since,
        limit: usize::try_from(limit).ok(),
        reverse,
    }
}

fn method_name(command: &Command) -> &'static str {
    match command {
        Command {
            connect: Some(_), ..
        } => "connect",
        Command {
            subscribe: Some(_), ..
        } => "subscribe",
        Command {
            unsubscribe: Some(_),
            ..
        } => "unsubscribe",
        Command {
            publish: Some(_), ..
        } => "publish",
        Command {
            presence: Some(_), ..
        } => "presence",
        Command {
            presence_stats: Some(_),
            ..
        } => "presence_stats",
        Command {
            history: Some(_), ..
        } => "history",
        Command { ping: Some(_), .. } => "ping",
        Command { send: Some(_), .. } => "send",
        Command { rpc: Some(_), .. } => "rpc",
        Command {
            refresh: Some(_), ..
        } => "refresh",
        Command {
            sub_refresh: Some(_),
            ..
        } => "sub_refresh",
        Command { id: 0, .. } => "pong",
        _ => "unknown",
    }
}
