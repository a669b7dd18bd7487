//! The `whep-viewers` scenario against the real server binary, small: one synthetic WHIP
//! publisher and five WHEP viewers in two worker processes. Every viewer must join and
//! decode a first keyframe, the relay's own counters must have been read, and the run must
//! exit by itself with its results written. No assertion is made on how fast anything is.
//!
//! The server is found by [`common::rootcast_bin`].

use std::time::Duration;

use serde_json::Value;

mod common;
use common::{out_dir, rootcast_bin};

/// The run is bounded by this (and by its own `--duration`).
const TIMEOUT: Duration = Duration::from_secs(240);
const VIEWERS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_joins_and_the_relays_counters_are_read() {
    let out = out_dir("whep");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootcast-loadtest"));
    command
        .args(["whep-viewers", "--no-pin", "--duration", "200"])
        .args(["--viewers", &VIEWERS.to_string()])
        .arg("--rootcast-bin")
        .arg(rootcast_bin())
        .arg("--out")
        .arg(&out)
        .env_remove("ROOTCAST_BIN")
        .kill_on_drop(true);
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("the load generator exits by itself")
        .expect("the load generator runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "whep-viewers failed:\n{stderr}");

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let report: Value = serde_json::from_str(&text).unwrap();
    let m = &report["measurements"][0];
    assert_eq!(m["error"], Value::Null, "{m}");
    assert_eq!(m["viewers"], VIEWERS);
    assert_eq!(m["measured_viewers"], VIEWERS, "every viewer measured: {m}");
    assert_eq!(m["joined"]["failed"], 0, "{m}");
    assert_eq!(m["joined"]["first_frames"], VIEWERS, "{m}");
    assert_eq!(m["first_keyframe_us"]["count"], VIEWERS, "{m}");
    assert!(m["published_video"].as_u64().unwrap() > 0, "{m}");
    assert!(m["forwarded"].as_u64().unwrap() > 0, "{m}");
    // The relay's own figures come from /relay/metrics at both ends of the window.
    assert!(m["relay"]["rtp_forwarded"].as_u64().unwrap() > 0, "{m}");
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md written");
    assert!(
        summary.contains(&format!("| {VIEWERS} | 1/1 |")),
        "one successful round in the summary:\n{summary}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
