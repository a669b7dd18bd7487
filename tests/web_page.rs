//! The web front end in a real browser: each test starts `rootcast serve`, then runs a
//! script from `tests/web/` that drives headless Chromium (Debian's `chromium`) with
//! `playwright-core` from `tests/node_modules` (`npm ci` in `tests/`).
//!
//! - `stats_page.mjs`: the live-state page at `/` follows the hub's counters.
//! - `client_protocol.mjs`: `rootcast-client.js`, the protocol client every page uses.
//!
//! A test fails, saying what to install, when node, Chromium or playwright-core is missing:
//! a browser test that quietly skips would hide a broken page.

mod common;

use common::TestServer;
use common::browser::run_node_script;
use serde_json::json;

/// Anonymous connections may subscribe to `sys:*`, where the hub publishes `sys:stats`.
const STATS_CONFIG: &str = r#"
[client]
allow_anonymous_connect_without_token = true

[[channel.namespaces]]
name = "sys"
allow_subscribe_for_anonymous = true
allow_subscribe_for_client = true
"#;

/// Fast pings, so a client that does not answer them is dropped within the test, and a
/// namespace with history and recovery.
const CLIENT_CONFIG: &str = r#"
[client]
ping_interval = "1s"
pong_timeout = "500ms"

[[channel.namespaces]]
name = "feed"
history_size = 100
history_ttl = "300s"
force_recovery = true
presence = true
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_presence_for_subscriber = true
allow_history_for_subscriber = true
"#;

/// Each script has its own 120 s watchdog; this one catches a hung node or browser.

#[test]
fn live_state_page_follows_the_hub_in_a_real_browser() {
    let server = TestServer::start(STATS_CONFIG);
    // Two distinct users among the extra connections, so the users counter must move.
    let tokens = json!([
        server.token("alice", 600, json!({})),
        server.token("bob", 600, json!({})),
        server.token("bob", 600, json!({})),
    ]);
    run_node_script(
        "stats_page.mjs",
        &server,
        &[("ROOTCAST_TEST_TOKENS", tokens.to_string())],
    );
}

#[test]
fn client_module_speaks_the_protocol_in_a_real_browser() {
    let server = TestServer::start(CLIENT_CONFIG);
    let token = server.token("carol", 600, json!({}));
    run_node_script(
        "client_protocol.mjs",
        &server,
        &[("ROOTCAST_TEST_TOKEN", token)],
    );
}
