//! The load generator's own tests: its latency accounting against a server with a known
//! injected delay, a clean, bounded exit when the server dies mid-run, and the reconnect
//! storm's recovery and loss accounting against a stand-in hub that recovers exactly, or
//! never (then the loss it reports must be exactly what the stand-in withheld). (The merge of
//! the workers' histograms is unit-tested in `src/histogram.rs`; here two workers' figures
//! are merged end to end.) No assertion is made on how fast anything is.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::hub::{Recovery, StandInHub};
use common::{DelayedFloor, out_dir, run_fanout, run_storm};
use serde_json::Value;

fn results(out: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_counts_from_the_scheduled_send_and_includes_the_servers_delay() {
    let delay_us = 50_000;
    let server = DelayedFloor::start(Duration::from_micros(delay_us)).await;
    let out = out_dir("latency");
    let output = run_fanout(
        server.address,
        &out,
        &[
            "--connections",
            "20",
            "--publications",
            "10",
            "--interval-ms",
            "100",
            "--idle-secs",
            "1",
            "--duration",
            "60",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load generator failed:\n{stderr}");
    let report = results(&out);
    let m = &report["measurements"][0];
    assert!(m["error"].is_null(), "{m}");
    assert_eq!(m["idle"]["ready"], 20);
    assert_eq!(m["workers"], 2);
    let f = &m["fanout"];
    // Both workers' counts and histograms were merged: 20 subscribers × 10 publications.
    assert_eq!(f["deliveries"], 200, "{f}");
    assert_eq!(f["missing"], 0);
    assert_eq!(f["duplicates"], 0);
    assert_eq!(f["latency_us"]["count"], 200);
    let p50 = f["latency_us"]["p50"].as_u64().unwrap();
    let min_last = f["time_to_last_us"]["p50"].as_u64().unwrap();
    // The delay is always there; a generous margin above it for a busy machine.
    assert!(
        p50 >= delay_us,
        "p50 {p50} µs is below the injected {delay_us} µs"
    );
    assert!(
        p50 < delay_us + 450_000,
        "p50 {p50} µs: far more than the injected delay"
    );
    assert!(min_last >= delay_us);
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("## 20 connections")
    );
    assert!(out.join("latency_distribution.svg").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_ends_the_run_with_an_error_and_no_process_left() {
    let server = DelayedFloor::start(Duration::ZERO).await;
    let out = out_dir("dies");
    let address = server.address;
    let run = tokio::spawn({
        let out = out.clone();
        async move {
            // 100 publications, 100 ms apart: the run would take over 10 s.
            run_fanout(
                address,
                &out,
                &[
                    "--connections",
                    "20",
                    "--publications",
                    "100",
                    "--interval-ms",
                    "100",
                    "--idle-secs",
                    "1",
                    "--duration",
                    "60",
                ],
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.die();
    let output = run.await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("closed all 20 connections") || stderr.contains("publisher:"),
        "no clear error:\n{stderr}"
    );
    // The failure is recorded, not hidden.
    let report = results(&out);
    assert!(report["measurements"][0]["error"].is_string());
    // Every worker it started is gone.
    let pids: Vec<u32> = stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("worker ")?
                .split("pid ")
                .nth(1)?
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(pids.len(), 2, "{stderr}");
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "worker {pid} still runs"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// 20 clients, 40 publications 50 ms apart; every client drops 700 ms in and the stand-in
/// answers each recovering subscribe 150 ms late, so every client misses a few.
const STORM: &[&str] = &[
    "--connections",
    "20",
    "--publications",
    "40",
    "--interval-ms",
    "50",
    "--storm-after-ms",
    "700",
    "--idle-secs",
    "1",
    "--drain-secs",
    "5",
    "--duration",
    "60",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_with_exact_recovery_reports_every_client_recovered_and_nothing_lost() {
    let hub = StandInHub::start(Recovery::Exact, Duration::from_millis(150)).await;
    let out = out_dir("storm-exact");
    let output = run_storm(hub.address, &out, STORM).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load generator failed:\n{stderr}");
    let report = results(&out);
    let m = &report["measurements"][0];
    assert!(m["error"].is_null(), "{m}");
    let storm = &m["storm"];
    assert_eq!(storm["dropped"], 20, "{storm}");
    assert_eq!(storm["reconnected"], 20, "{storm}");
    assert_eq!(storm["recovered"], 20, "{storm}");
    assert_eq!(storm["recovered_percent"], 100.0);
    assert_eq!(storm["lost"], 0, "{storm}");
    assert_eq!(storm["duplicates"], 0, "{storm}");
    assert!(storm["connects_per_sec"].as_f64().unwrap() > 0.0);
    // The stand-in delayed each reply by 150 ms: the time to come back includes it.
    assert!(
        storm["reconnect_us"]["p50"].as_u64().unwrap() >= 150_000,
        "{storm}"
    );
    assert_eq!(hub.recovering_subscribes.load(Ordering::Relaxed), 20);
    let f = &m["fanout"];
    assert_eq!(f["deliveries"], 800, "{f}");
    assert_eq!(f["missing"], 0);
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("storm: reconnects per second")
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_without_recovery_reports_exactly_the_publications_withheld() {
    let hub = StandInHub::start(Recovery::Never, Duration::from_millis(150)).await;
    let out = out_dir("storm-never");
    let output = run_storm(hub.address, &out, STORM).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load generator failed:\n{stderr}");
    let report = results(&out);
    let m = &report["measurements"][0];
    assert!(m["error"].is_null(), "{m}");
    let storm = &m["storm"];
    assert_eq!(storm["reconnected"], 20, "{storm}");
    assert_eq!(storm["recovered"], 0, "{storm}");
    let withheld = hub.unrecovered.load(Ordering::Relaxed);
    assert!(
        withheld >= 20,
        "every client missed at least one: {withheld}"
    );
    assert_eq!(storm["lost"], withheld, "{storm}");
    assert_eq!(m["fanout"]["missing"], withheld);
    assert_eq!(storm["duplicates"], 0, "{storm}");
    let _ = std::fs::remove_dir_all(&out);
}
