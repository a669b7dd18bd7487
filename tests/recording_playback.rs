//! A recorded stream plays back in headless Chromium (`tests/web/recording_playback.mjs`):
//! the fake camera is published from `/publish` for a few seconds, the relay records it
//! to WebM, and a `<video>` plays `/recordings/<name>` (duration within a second of the
//! live session, frames decoded, a seek to the middle, Range requests).
//!
//! Contained in a private network namespace `rc-rec-<pid>` (`tests/common/browser.rs`
//! says how and why); needs root, node, Chromium and playwright-core.

mod common;

use common::TestServer;
use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script};

#[test]
fn a_recorded_stream_plays_and_seeks_in_a_real_browser() {
    run_contained(
        "rc-rec",
        "ROOTCAST_RECORDING_PLAYBACK_NETNS",
        "a_recorded_stream_plays_and_seeks_in_a_real_browser",
        || {
            let dir = std::env::temp_dir().join(format!(
                "rootcast-recording-playback-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let server = TestServer::start_with_env(
                "",
                &[
                    ("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND),
                    ("ROOTCAST_RELAY_RECORDING_DIR", &dir.to_string_lossy()),
                ],
            );
            run_node_script("recording_playback.mjs", &server, &[]);
            // The file the page played is a finished recording in the configured folder.
            let list = rootcast_relay::record::list_recordings(&dir).expect("the folder lists");
            assert_eq!(list.len(), 1, "{list:?}");
            assert!(list[0].stream.starts_with("rec-play-"), "{list:?}");
            drop(server);
            std::fs::remove_dir_all(&dir).unwrap();
        },
    );
}
