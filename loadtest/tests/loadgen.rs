//! The load generator's own tests: its latency accounting against a server with a known
//! injected delay, and a clean, bounded exit when the server dies mid-run. (The merge of
//! the workers' histograms is unit-tested in `src/histogram.rs`; here two workers' figures
//! are merged end to end.) No assertion is made on how fast anything is.

mod common;

use std::time::Duration;

use common::{DelayedFloor, out_dir, run_fanout};
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
