//! The `whep-viewers` scenario against the real servers, small: one synthetic publisher and
//! a few viewers in two worker processes. Against `rootcast serve`: every viewer must join
//! and get a first keyframe, and the relay's own counters must have been read. With Janus
//! beside it (`--targets rootcast,janus`): the run moves into a network namespace of its
//! own, both servers carry every viewer, the summary gives their ratio, and the run's veth
//! pair never shows outside. Each run must exit by itself with its results written. No assertion is made
//! on how fast anything is.
//!
//! The server is found by [`common::rootcast_bin`]; Janus is Debian's `janus` (installed by
//! `scripts/test.sh`), and its run needs root for the namespace.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{out_dir, rootcast_bin};

/// A run is bounded by this (and by its own `--duration`).
const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs `whep-viewers` unpinned with `extra` arguments, results under `out`.
async fn whep_viewers(out: &Path, extra: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootcast-loadtest"));
    command
        .args(["whep-viewers", "--no-pin", "--duration", "200"])
        .args(extra)
        .arg("--rootcast-bin")
        .arg(rootcast_bin())
        .arg("--out")
        .arg(out)
        .env_remove("ROOTCAST_BIN")
        .kill_on_drop(true);
    tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("the load generator exits by itself")
        .expect("the load generator runs")
}

/// The measurements of `results.json`, after checking the run succeeded.
fn measurements(out: &Path, output: &Output) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "whep-viewers failed:\n{stderr}");
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let report: Value = serde_json::from_str(&text).unwrap();
    report["measurements"].as_array().unwrap().clone()
}

/// Every one of `viewers` joined, got a keyframe and was measured; media flowed.
fn assert_every_viewer_served(m: &Value, viewers: u64) {
    assert_eq!(m["error"], Value::Null, "{m}");
    assert_eq!(m["viewers"], viewers);
    assert_eq!(m["measured_viewers"], viewers, "every viewer measured: {m}");
    assert_eq!(m["joined"]["failed"], 0, "{m}");
    assert_eq!(m["joined"]["first_frames"], viewers, "{m}");
    assert_eq!(m["first_keyframe_us"]["count"], viewers, "{m}");
    assert!(m["published_video"].as_u64().unwrap() > 0, "{m}");
    assert!(m["forwarded"].as_u64().unwrap() > 0, "{m}");
    assert!(
        m["forwarded_per_server_cpu_sec"].as_f64().unwrap() > 0.0,
        "{m}"
    );
    assert_eq!(m["stalled"], false, "the viewers got the stream: {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_joins_and_the_relays_counters_are_read() {
    const VIEWERS: u64 = 5;
    let out = out_dir("whep");
    let output = whep_viewers(&out, &["--viewers", &VIEWERS.to_string()]).await;
    let measured = measurements(&out, &output);
    let m = &measured[0];
    assert_eq!(m["target"], "rootcast");
    assert_every_viewer_served(m, VIEWERS);
    // The relay's own figures come from /relay/metrics at both ends of the window.
    assert!(m["relay"]["rtp_forwarded"].as_u64().unwrap() > 0, "{m}");
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md written");
    assert!(
        summary.contains(&format!("| {VIEWERS} | rootcast | 1/1 |")),
        "one successful round in the summary:\n{summary}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Why Janus can't be measured here, if it can't: it needs root (for the namespace), `ip`
/// and `janus`.
fn janus_missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    let found = |program: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !root {
        Some("not root (a Janus run makes a network namespace)".into())
    } else if !found("ip") {
        Some("no `ip` (iproute2)".into())
    } else if !found("janus") {
        Some("no `janus` (apt-get install janus)".into())
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_is_measured_beside_rootcast_inside_a_namespace_of_the_runs_own() {
    const VIEWERS: u64 = 3;
    if let Some(why) = janus_missing() {
        let required = std::env::var("ROOTCAST_REQUIRE_SERVICES")
            .is_ok_and(|value| !value.is_empty() && value != "0");
        assert!(!required, "{why} (ROOTCAST_REQUIRE_SERVICES is set)");
        eprintln!("skipped: {why}");
        return;
    }
    let out = out_dir("whep-janus");
    let output = whep_viewers(
        &out,
        &[
            "--targets",
            "rootcast,janus",
            "--viewers",
            &VIEWERS.to_string(),
            "--measure-secs",
            "4",
        ],
    )
    .await;
    let measured = measurements(&out, &output);
    let targets: Vec<&str> = measured
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["rootcast", "janus"], "measured side by side");
    for m in &measured {
        assert_every_viewer_served(m, VIEWERS);
    }
    assert!(measured[0]["relay"].is_object(), "rootcast's own counters");
    assert_eq!(
        measured[1]["relay"],
        Value::Null,
        "Janus has no such counters"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md written");
    assert!(
        summary.contains(&format!("| {VIEWERS} | janus | 1/1 |"))
            && summary.contains(&format!("- {VIEWERS} viewers: rootcast ")),
        "both rows and their ratio in the summary:\n{summary}"
    );
    // Janus's interface was inside the run's namespace, never here.
    let host = std::process::Command::new("ip")
        .args(["link", "show", "dev", "jv0"])
        .output()
        .expect("ip link show");
    assert!(!host.status.success(), "jv0 is visible outside the run");
    let _ = std::fs::remove_dir_all(&out);
}
