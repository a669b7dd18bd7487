//! The `meeting` scenario against the real server binary, small: every accepted question,
//! vote and chat message must reach every participant exactly once and the counts must
//! add up; a chat rate above the per-member limit must show up as refusals, never as
//! losses. No assertion is made on how fast anything is.
//!
//! The server is found by [`common::rootcast_bin`].

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{out_dir, rootcast_bin};

/// Every run is bounded by this (and by its own `--duration`).
const TIMEOUT: Duration = Duration::from_secs(240);

async fn run_meeting(out: &Path, extra: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootcast-loadtest"));
    command
        .args(["meeting", "--no-pin", "--workers", "2", "--duration", "200"])
        .arg("--rootcast-bin")
        .arg(rootcast_bin())
        .arg("--out")
        .arg(out)
        .args(extra)
        .env_remove("ROOTCAST_BIN")
        .kill_on_drop(true);
    tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("the load generator exits by itself")
        .expect("the load generator runs")
}

fn measurement(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let report: Value = serde_json::from_str(&text).unwrap();
    report["measurements"][0].clone()
}

fn action<'a>(m: &'a Value, method: &str) -> &'a Value {
    m["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["method"] == method)
        .unwrap_or_else(|| panic!("no {method} figures: {m}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_question_vote_and_message_reaches_every_participant_exactly_once() {
    let out = out_dir("meeting");
    // 50 participants; 60 questions, 15 votes and 30 chat messages over 3 s. Each member
    // asks once every 2.5 s and posts once every 5 s: inside every limit.
    let output = run_meeting(
        &out,
        &[
            "--participants",
            "50",
            "--questions-per-sec",
            "20",
            "--votes-per-sec",
            "5",
            "--chats-per-sec",
            "10",
            "--run-secs",
            "3",
            "--drain-secs",
            "20",
            "--join-rate",
            "200",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load generator failed:\n{stderr}");
    let m = measurement(&out);
    assert!(m["error"].is_null(), "{m}");
    assert_eq!(m["ready"], 50, "{m}");
    assert_eq!(m["failed"], 0, "{m}");
    assert_eq!(m["closed"], 0, "{m}");
    assert_eq!(m["refusals"], serde_json::json!({}), "{m}");
    for (method, scheduled) in [("qa.ask", 60), ("qa.vote", 15), ("chat.post", 30)] {
        let a = action(&m, method);
        assert_eq!(a["scheduled"], scheduled, "{a}");
        assert_eq!(a["sent"], scheduled, "{a}");
        assert_eq!(a["accepted"], scheduled, "{a}");
        assert_eq!(a["refused"], 0, "{a}");
        // Every event to every participant, the sender included, once.
        assert_eq!(a["expected"], scheduled * 50, "{a}");
        assert_eq!(a["deliveries"], scheduled * 50, "{a}");
        assert_eq!(a["missing"], 0, "{a}");
        assert_eq!(a["incomplete"], 0, "{a}");
        assert_eq!(a["unaccepted_copies"], 0, "{a}");
        assert_eq!(a["latency_us"]["count"], scheduled * 50, "{a}");
        assert_eq!(a["time_to_all_us"]["count"], scheduled, "{a}");
        assert_eq!(a["answered_us"]["count"], scheduled, "{a}");
    }
    assert_eq!(m["deliveries"], 105 * 50);
    assert_eq!(m["expected"], 105 * 50);
    assert_eq!(m["missing"], 0);
    assert_eq!(m["duplicates"], 0, "{m}");
    assert_eq!(m["unexpected"], 0, "{m}");
    assert_eq!(m["votes_unsent"], 0, "{m}");
    assert_eq!(m["unsent_offline"], 0, "{m}");
    // The asker also gets each change to their own question on their personal channel:
    // the question, then its vote.
    assert_eq!(m["personal_deliveries"], 60 + 15, "{m}");
    assert!(m["server_cpu_secs"].as_f64().unwrap() > 0.0, "{m}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("# meeting"), "{summary}");
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_beyond_the_per_member_limit_is_reported_as_refusals_not_losses() {
    let out = out_dir("meeting-refusals");
    // 10 participants posting 40 messages a second for 3 s: each member 12 messages in
    // 3 s against a bucket of 5 refilled one every 2 s, so about half are refused.
    let output = run_meeting(
        &out,
        &[
            "--participants",
            "10",
            "--questions-per-sec",
            "0",
            "--votes-per-sec",
            "0",
            "--chats-per-sec",
            "40",
            "--run-secs",
            "3",
            "--drain-secs",
            "20",
            "--join-rate",
            "100",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load generator failed:\n{stderr}");
    let m = measurement(&out);
    assert!(m["error"].is_null(), "{m}");
    let chat = action(&m, "chat.post");
    let accepted = chat["accepted"].as_u64().unwrap();
    let refused = chat["refused"].as_u64().unwrap();
    assert_eq!(accepted + refused, 120, "{chat}");
    assert!(
        accepted >= 50,
        "the bucket lets at least 5 per member through: {chat}"
    );
    assert!(refused >= 40, "{chat}");
    let refusals = m["refusals"].as_object().unwrap();
    let limited: u64 = refusals
        .iter()
        .filter(|(reason, _)| reason.starts_with("chat.post 1429 "))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        limited, refused,
        "every refusal is the rate limit: {refusals:?}"
    );
    // Only accepted messages are expected, and every one of them arrived everywhere.
    assert_eq!(chat["expected"], accepted * 10, "{chat}");
    assert_eq!(chat["deliveries"], accepted * 10, "{chat}");
    assert_eq!(chat["missing"], 0, "{chat}");
    assert_eq!(chat["unaccepted_copies"], 0, "{chat}");
    assert_eq!(m["duplicates"], 0, "{m}");
    let _ = std::fs::remove_dir_all(&out);
}
