//! The relay's publish and watch pages in headless Chromium (`tests/web/relay_pages.mjs`):
//! the fake camera is published with WHIP from `/publish`, `/watch` plays it with WHEP, and
//! the watch page's `getStats()` must show `framesDecoded` growing.
//!
//! Contained in a private network namespace `rc-test-<pid>` (`tests/common/browser.rs`
//! says how and why); needs root, node, Chromium and playwright-core.

mod common;

use common::TestServer;
use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script};

#[test]
fn publish_and_watch_pages_carry_video_in_a_real_browser() {
    run_contained(
        "rc-test",
        "ROOTCAST_RELAY_PAGES_NETNS",
        "publish_and_watch_pages_carry_video_in_a_real_browser",
        || {
            let server = TestServer::start_with_env(
                "",
                &[("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND)],
            );
            run_node_script("relay_pages.mjs", &server, &[]);
        },
    );
}
