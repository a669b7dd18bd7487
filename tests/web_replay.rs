//! A meeting's recordings and the replay page (issue 6).
//!
//! - Without a browser: `GET /api/v1/meetings/{id}/recordings` lists the recordings of the
//!   meeting's stream made while it was live (files put in the recording folder by the
//!   test), for its audience only; the playback URL it returns serves the file (Range
//!   included) to its holder and nothing else; a login that may watch serves it too.
//! - In headless Chromium (`tests/web/replay.mjs`): a meeting goes live, the fake camera is
//!   published from `/publish`, questions are asked, voted and answered, the meeting ends;
//!   the listing has the recording (and refuses a stranger); the ended meeting's viewer page
//!   links to `/replay`, which plays it (frames, duration within a second of the live
//!   session) with the Q&A beside it, and selecting a question seeks to when it was asked.
//!   Contained in a private network namespace `rc-replay-<pid>` (`tests/common/browser.rs`
//!   says how and why); needs root, node, Chromium and playwright-core.

mod common;

use std::path::{Path, PathBuf};

use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script};
use common::ws::Ws;
use common::{TestServer, http_request};
use serde_json::{Value, json};

/// A fresh recording folder for this test.
fn recording_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rootcast-replay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Units of the demo organisation: (two stations under county `xian-01`, a station in
/// another city).
fn units(server: &TestServer, admin: &str) -> (Vec<String>, String) {
    let (status, units) = server.rest("GET", "/api/v1/org/units", Some(admin), None);
    assert_eq!(status, 200, "{units}");
    let units = units.as_array().expect("a list of units");
    let ours: Vec<String> = units
        .iter()
        .filter(|u| u["parent"] == "xian-01")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .take(2)
        .collect();
    assert_eq!(ours.len(), 2, "two stations in xian-01");
    let stranger = units
        .iter()
        .find(|u| {
            u["level"] == "unit" && !u["path"].as_str().unwrap_or("/xian/").contains("/xian/")
        })
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .expect("a unit outside xian");
    (ours, stranger)
}

/// GET `path` with optional headers; (status, body bytes, headers text).
fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    http_request(&server.address, "GET", path, headers, b"")
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_meetings_recordings_are_for_its_audience_and_play_with_their_own_token() {
    let dir = recording_dir("access");
    let server = TestServer::start_with_env(
        "",
        &[("ROOTCAST_RELAY_RECORDING_DIR", &dir.to_string_lossy())],
    );
    let admin = server.login_as("hq-admin", "admin", None);
    let (stations, elsewhere) = units(&server, &admin);
    let moderator = server.login_as("rec-mod", "moderator", Some("xian"));
    let viewer = server.login_as("rec-viewer", "member", Some(&stations[1]));
    let stranger = server.login_as("rec-stranger", "member", Some(&elsewhere));

    let (status, scheduled) = server.rest(
        "POST",
        "/api/v1/meetings",
        Some(&moderator),
        Some(json!({"title": "Recorded", "starts_at": now_ms(), "target": {"units": stations}})),
    );
    assert_eq!(status, 201, "{scheduled}");
    let id = scheduled["meeting"]["id"].as_str().unwrap().to_owned();
    let list_path = format!("/api/v1/meetings/{id}/recordings");

    // Before it goes live: nothing, even with files of the stream-to-be around.
    let (status, listed) = server.rest("GET", &list_path, Some(&viewer), None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["recordings"], json!([]));

    let (status, live) = server.rest(
        "POST",
        &format!("/api/v1/meetings/{id}/live"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200, "{live}");
    let stream = live["media"]["stream"].as_str().unwrap().to_owned();
    let live_at = live["meeting"]["live_at"].as_u64().unwrap();

    // Files the relay would have written: the meeting's (during: it starts as the meeting
    // goes live, so it is inside the meeting however soon the end below comes), one of the
    // stream from an hour before (a test run), one of another stream (during).
    let name = |stream: &str, at: u64| {
        format!(
            "{}.webm",
            rootcast_relay::record::writer::recording_name(stream, at)
        )
    };
    let during = name(&stream, live_at);
    let before = name(&stream, live_at - 3_600_000);
    let other = name("another-stream", live_at);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    for file in [&during, &before, &other] {
        write_file(&dir, file, &bytes);
    }
    let (status, ended) = server.rest(
        "POST",
        &format!("/api/v1/meetings/{id}/end"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200, "{ended}");
    // After the end: a new session on the same stream is not the meeting's.
    let after = name(&stream, now_ms() + 60_000);
    write_file(&dir, &after, &bytes);

    // The audience lists exactly the meeting's recording, with a playback URL.
    let (status, listed) = server.rest("GET", &list_path, Some(&viewer), None);
    assert_eq!(status, 200, "{listed}");
    let recordings = listed["recordings"].as_array().expect("a list");
    assert_eq!(recordings.len(), 1, "{listed}");
    let recording = &recordings[0];
    assert_eq!(recording["name"], during.as_str());
    assert_eq!(recording["stream"], stream.as_str());
    assert_eq!(recording["size"], 10_000);
    assert_eq!(recording["started_at"], live_at);
    assert_eq!(listed["meeting"]["status"], "ended");
    let url = recording["url"]
        .as_str()
        .expect("a playback URL")
        .to_owned();
    assert!(
        url.starts_with(&format!("{list_path}/{during}?token=")),
        "{url}"
    );
    // The moderator lists it too.
    let (status, by_moderator) = server.rest("GET", &list_path, Some(&moderator), None);
    assert_eq!(
        (status, by_moderator["recordings"].as_array().map(Vec::len)),
        (200, Some(1))
    );

    // Strangers and anonymous callers do not; an unknown meeting is 404.
    let (status, refused) = server.rest("GET", &list_path, Some(&stranger), None);
    assert_eq!(status, 403, "{refused}");
    assert_eq!(server.rest("GET", &list_path, None, None).0, 401);
    assert_eq!(
        server
            .rest(
                "GET",
                "/api/v1/meetings/nope/recordings",
                Some(&viewer),
                None
            )
            .0,
        404
    );

    // The playback URL serves the file, whole and by range, to anyone who holds it.
    let (status, body) = get(&server, &url, &[]);
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    let (status, body) = get(&server, &url, &[("Range", "bytes=100-199")]);
    assert_eq!(status, 206);
    assert_eq!(body, bytes[100..200]);

    // Without a token: a login that may watch, yes; a stranger's or none, no.
    let file_path = format!("{list_path}/{during}");
    let bearer = |token: &str| format!("Bearer {token}");
    assert_eq!(
        get(&server, &file_path, &[("Authorization", &bearer(&viewer))]).0,
        200
    );
    assert_eq!(
        get(
            &server,
            &file_path,
            &[("Authorization", &bearer(&stranger))]
        )
        .0,
        403
    );
    assert_eq!(get(&server, &file_path, &[]).0, 401);

    // The token is for this recording of this meeting only, and cannot be forged.
    let token = url.split("token=").nth(1).unwrap().to_owned();
    for other_file in [&before, &other, &after] {
        let (status, _) = get(
            &server,
            &format!("{list_path}/{other_file}?token={token}"),
            &[],
        );
        assert_eq!(status, 403, "{other_file} with the token of {during}");
    }
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        get(&server, &format!("{file_path}?token={forged}"), &[]).0,
        401
    );
    // A token the hub signs for other purposes (a login) is no playback token...
    assert_eq!(
        get(&server, &format!("{file_path}?token={viewer}"), &[]).0,
        401
    );
    // ...and a playback token is no login, nor a WebSocket connection token.
    let (status, _) = server.rest("GET", "/api/v1/me", Some(&token), None);
    assert_eq!(status, 401, "a playback token is not a login");

    // Recordings of the stream outside the meeting are not served through it, whoever asks.
    for other_file in [&before, &other, &after] {
        let (status, _) = get(
            &server,
            &format!("{list_path}/{other_file}"),
            &[("Authorization", &bearer(&moderator))],
        );
        assert_eq!(status, 404, "{other_file}");
    }
    // Names that are not recordings are 404 (never a path outside the folder).
    for bad in ["..%2F..%2Fetc%2Fpasswd", "x.webm", "secret.txt"] {
        let (status, _) = get(
            &server,
            &format!("{list_path}/{bad}"),
            &[("Authorization", &bearer(&moderator))],
        );
        assert_eq!(status, 404, "{bad}");
    }

    // The same over the WebSocket: `meeting.recordings` for the audience, 1403 for others;
    // a playback token opens no connection.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut ws = Ws::connect(&server, &viewer).await;
            let listed = ws
                .rpc("meeting.recordings", json!({"meeting": id}))
                .await
                .expect("meeting.recordings for the audience");
            assert_eq!(listed["recordings"][0]["name"], during.as_str(), "{listed}");
            let mut ws = Ws::connect(&server, &stranger).await;
            assert_eq!(
                ws.rpc("meeting.recordings", json!({"meeting": id})).await,
                Err(1403)
            );
            assert!(Ws::refused_connect(&server, &token).await.is_some());
        });
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_replay_page_plays_an_ended_meetings_recording_beside_its_questions() {
    run_contained(
        "rc-replay",
        "ROOTCAST_WEB_REPLAY_NETNS",
        "the_replay_page_plays_an_ended_meetings_recording_beside_its_questions",
        || {
            let dir = recording_dir("page");
            let server = TestServer::start_with_env(
                "",
                &[
                    ("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND),
                    ("ROOTCAST_RELAY_RECORDING_DIR", &dir.to_string_lossy()),
                ],
            );
            let admin = server.login_as("hq-admin", "admin", None);
            let (stations, elsewhere) = units(&server, &admin);
            let account = |username: &str, role: &str, unit: Option<&str>| -> Value {
                server.login_as(username, role, unit);
                json!({"username": username, "password": format!("{username}-password")})
            };
            let setup = json!({
                "moderator": account("replay-mod", "moderator", Some("xian")),
                "expert": account("replay-expert", "expert", None),
                "viewers": [
                    account("replay-viewer-0", "member", Some(&stations[0])),
                    account("replay-viewer-1", "member", Some(&stations[1])),
                ],
                "stranger": account("replay-stranger", "member", Some(&elsewhere)),
                "units": stations,
            });
            run_node_script(
                "replay.mjs",
                &server,
                &[("ROOTCAST_TEST_REPLAY", setup.to_string())],
            );
            let list = rootcast_relay::record::list_recordings(&dir).expect("the folder lists");
            assert_eq!(list.len(), 1, "one recording: {list:?}");
            drop(server);
            std::fs::remove_dir_all(&dir).unwrap();
        },
    );
}
