//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: u16,
}

fn command_histogram() -> Histogram {
    // 10 µs … ~2.6 s.
    Histogram::new(exponential_buckets(0.00001, 4.0, 10))
}

pub struct Metrics {
    /// Open client connections (authenticated or not).
    pub connections: Gauge,
    /// Subscriptions held by connections on this node.
    pub subscriptions: Gauge,
    /// Channels with at least one subscriber here (set when scraped).
    pub channels: Gauge,
    /// Commands received from clients.
    pub messages_in: Counter,
    /// Publications, joins and leaves queued for subscribers (one per subscriber).
    pub messages_out: Counter,
    /// Queued frames dropped because their connection was closed as slow.
    pub queue_drops: Counter,
    /// Connections closed because their queue passed `client.queue_max_size`.
    pub slow_disconnects: Counter,
    /// Connections closed by the server, by disconnect code.
    pub disconnects: Family<CodeLabel, Counter>,
    /// Time to handle a client command, by method.
    pub command_duration: Family<MethodLabel, Histogram, fn() -> Histogram>,
    /// Server API requests, by method.
    pub api_requests: Family<MethodLabel, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Metrics {
            connections: Gauge::default(),
            subscriptions: Gauge::default(),
            channels: Gauge::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            queue_drops: Counter::default(),
            slow_disconnects: Counter::default(),
            disconnects: Family::default(),
            command_duration: Family::new_with_constructor(command_histogram),
            api_requests: Family::default(),
            registry: Registry::with_prefix("rootcast"),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "connections",
            "Open client connections",
            metrics.connections.clone(),
        );
        registry.register(
            "subscriptions",
            "Subscriptions held by connections",
            metrics.subscriptions.clone(),
        );
        registry.register(
            "channels",
            "Channels with subscribers on this node",
            metrics.channels.clone(),
        );
        registry.register(
            "messages_in",
            "Commands received from clients",
            metrics.messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Publications, joins and leaves queued for subscribers",
            metrics.messages_out.clone(),
        );
        registry.register(
            "queue_drops",
            "Queued frames dropped when a slow connection was closed",
            metrics.queue_drops.clone(),
        );
        registry.register(
            "slow_disconnects",
            "Connections closed for passing the queue limit",
            metrics.slow_disconnects.clone(),
        );
        registry.register(
            "disconnects",
            "Connections closed by the server, by code",
            metrics.disconnects.clone(),
        );
        registry.register(
            "command_duration_seconds",
            "Time to handle a client command",
            metrics.command_duration.clone(),
        );
        registry.register(
            "api_requests",
            "Server API requests",
            metrics.api_requests.clone(),
        );
        metrics
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("encoding metrics into a String");
        text
    }
}
