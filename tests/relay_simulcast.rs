//! Simulcast through the relay in headless Chromium (`tests/web/relay_simulcast.mjs`): the
//! publish page sends the fake camera as three RIDs (q/h/f), two watch pages play it, late
//! joiners must decode their first frame within 1 s of the WHEP POST (R2), and the watch
//! page's layer picker (the WHEP layer route) switches layers and audio-only while playback
//! goes on. Join times are printed (`R2 join …`).
//!
//! Contained in a private network namespace `rc-sim-<pid>` (`tests/common/browser.rs`
//! says how and why); needs root, node, Chromium and playwright-core.

mod common;

use common::TestServer;
use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script};

#[test]
fn simulcast_late_join_and_layer_switches_in_a_real_browser() {
    run_contained(
        "rc-sim",
        "ROOTCAST_RELAY_SIMULCAST_NETNS",
        "simulcast_late_join_and_layer_switches_in_a_real_browser",
        || {
            let server = TestServer::start_with_env(
                "",
                &[("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND)],
            );
            run_node_script("relay_simulcast.mjs", &server, &[]);
        },
    );
}
