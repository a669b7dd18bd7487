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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestServer, wait_with_timeout};
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
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn live_state_page_follows_the_hub_in_a_real_browser() {
    let server = TestServer::start(STATS_CONFIG);
    // Two distinct users among the extra connections, so the users counter must move.
    let tokens = json!([
        server.token("alice", 600, json!({})),
        server.token("bob", 600, json!({})),
        server.token("bob", 600, json!({})),
    ]);
    run_script(
        "stats_page.mjs",
        &server,
        &[("ROOTCAST_TEST_TOKENS", tokens.to_string())],
    );
}

#[test]
fn client_module_speaks_the_protocol_in_a_real_browser() {
    let server = TestServer::start(CLIENT_CONFIG);
    let token = server.token("carol", 600, json!({}));
    run_script(
        "client_protocol.mjs",
        &server,
        &[("ROOTCAST_TEST_TOKEN", token)],
    );
}

/// Runs `node tests/web/<script> <http_url>` and fails the test unless it exits 0 in time.
/// Its output goes straight to the terminal, screenshot paths included.
fn run_script(script: &str, server: &TestServer, env: &[(&str, String)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = std::env::var_os("ROOTCAST_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/node_modules"));
    let chromium = std::env::var_os("ROOTCAST_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        node_modules.join("playwright-core/package.json").is_file(),
        "playwright-core is not installed in {} (run `npm ci` in tests/, or point \
         ROOTCAST_TEST_NODE_MODULES at a node_modules folder that has it)",
        node_modules.display()
    );
    assert!(
        chromium.is_file(),
        "no browser at {} (install Debian's `chromium` package, or set ROOTCAST_TEST_CHROMIUM)",
        chromium.display()
    );

    let mut command = Command::new("node");
    command
        .arg(root.join("tests/web").join(script))
        .arg(&server.http_url)
        .current_dir(root.join("tests"))
        .env("ROOTCAST_TEST_API_KEY", &server.api_key)
        .env("ROOTCAST_TEST_NODE_MODULES", &node_modules)
        .env("ROOTCAST_TEST_CHROMIUM", &chromium)
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run `node` (install Node.js 18 or newer): {error}"));

    match wait_with_timeout(&mut child, SCRIPT_TIMEOUT) {
        Some(status) => assert!(
            status.success(),
            "tests/web/{script} failed ({status}); its output above says which check"
        ),
        None => panic!(
            "tests/web/{script} did not finish within {} s and was killed",
            SCRIPT_TIMEOUT.as_secs()
        ),
    }
}
