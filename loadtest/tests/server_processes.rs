//! `--server-processes`: `ws-fanout` small against two copies of the real `rootcast` and
//! two of the floor: every subscriber must get every publication once from its own copy,
//! and each copy must have served its half of the clients (its own connection count and
//! open files). No assertion is made on how fast anything is.
//!
//! The server is found by [`common::rootcast_bin`].

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{out_dir, rootcast_bin};

/// The run is bounded by this (and by its own `--duration`).
const TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_each_serve_half_the_subscribers_and_every_publication_arrives() {
    let out = out_dir("server-processes");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootcast-loadtest"));
    command
        .args(["ws-fanout", "--targets", "rootcast,floor", "--no-pin"])
        .args(["--server-processes", "2", "--connections", "300"])
        .args(["--publications", "5", "--interval-ms", "200"])
        .args([
            "--idle-secs",
            "1",
            "--drain-secs",
            "20",
            "--duration",
            "200",
        ])
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
    assert!(output.status.success(), "load generator failed:\n{stderr}");
    for kind in ["rootcast", "floor"] {
        assert!(
            stderr.contains(&format!("2 {kind} processes: pids ")),
            "{stderr}"
        );
    }

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["args"]["server_processes"], 2);
    let measurements = report["measurements"].as_array().unwrap();
    assert_eq!(measurements.len(), 2, "{report}");
    for m in measurements {
        assert!(m["error"].is_null(), "{m}");
        assert_eq!(m["server_processes"], 2, "{m}");
        let workers = m["workers"].as_u64().unwrap();
        assert!(workers >= 2 && workers % 2 == 0, "{m}");
        assert_eq!(m["idle"]["ready"], 300, "{m}");
        let f = &m["fanout"];
        assert_eq!(f["published"], 5, "{f}");
        assert!(f["publisher_error"].is_null(), "{f}");
        assert_eq!(f["expected"], 300 * 5, "{f}");
        assert_eq!(f["deliveries"], 300 * 5, "{f}");
        assert_eq!(f["missing"], 0, "{f}");
        assert_eq!(f["duplicates"], 0, "{f}");
        assert_eq!(f["unexpected"], 0, "{f}");
        // Each copy: its own process and port, half the clients, a socket for each.
        let processes = m["idle"]["by_server_process"].as_array().unwrap();
        assert_eq!(processes.len(), 2, "{m}");
        let distinct = |field: &str| {
            processes
                .iter()
                .map(|p| p[field].to_string())
                .collect::<BTreeSet<_>>()
                .len()
        };
        assert_eq!((distinct("pid"), distinct("address")), (2, 2), "{m}");
        for p in processes {
            assert_eq!(p["connections"], 150, "{p}");
            assert!(p["open_files"].as_u64().unwrap() >= 150, "{p}");
            if m["target"] == "rootcast" {
                assert!(p["rss_kib_per_conn"].as_f64().unwrap() > 0.0, "{p}");
            }
        }
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("rootcast ×2") && summary.contains("each process"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
