//! The meeting pages in headless Chromium (`tests/web/meetings.mjs`): the publish page
//! sends the fake camera into a live meeting; the meeting-room TV (`/tv`) and two viewer
//! pages (`/meeting`) play it; a viewer asks, the other votes, the moderator approves and
//! puts it on screen, the expert answers, a chat message is deleted — every page shows each
//! step live. Then the server is restarted on the same address and store, and the TV comes
//! back to live video and the current state by itself.
//!
//! Contained in a private network namespace `rc-meet-<pid>` (`tests/common/browser.rs` says
//! how and why); needs root, node, Chromium and playwright-core.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script};
use common::{RestartedServer, TestServer};
use serde_json::{Value, json};

/// Sets the flag when dropped, so the restart watcher stops even when the script fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn meeting_pages_and_the_tv_follow_a_live_meeting_and_the_tv_recovers_from_a_restart() {
    run_contained(
        "rc-meet",
        "ROOTCAST_WEB_MEETINGS_NETNS",
        "meeting_pages_and_the_tv_follow_a_live_meeting_and_the_tv_recovers_from_a_restart",
        || {
            let env = [("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND)];
            let server = TestServer::start_with_env("", &env);
            let admin = server.login_as("hq-admin", "admin", None);
            let stations = county_stations(&server, &admin);
            assert!(
                stations.len() >= 3,
                "three stations in xian-01: {stations:?}"
            );

            let moderator = account(&server, "xian-mod", "moderator", Some("xian"));
            let expert = account(&server, "flood-expert", "expert", None);
            let viewers: Vec<Value> = (0..2)
                .map(|i| {
                    account(
                        &server,
                        &format!("viewer-{i}"),
                        "member",
                        Some(&stations[i]),
                    )
                })
                .collect();
            let printed =
                server.account(&["credential", "--unit", &stations[2], "--label", "room"]);
            let credential = printed
                .split_whitespace()
                .find(|word| word.starts_with("rcu_"))
                .unwrap_or_else(|| panic!("a credential in: {printed}"))
                .to_owned();

            // The script asks for a restart and for packet loss by creating files here (see
            // `serve_requests`).
            let control =
                std::env::temp_dir().join(format!("rootcast-web-meetings-{}", std::process::id()));
            std::fs::create_dir_all(&control).expect("a control folder");
            let setup = json!({
                "moderator": moderator,
                "expert": expert,
                "viewers": viewers,
                "units": &stations[..3],
                "screen": {"unit": stations[2], "credential": credential},
                "control": control,
            });

            let restarted: Mutex<Option<RestartedServer>> = Mutex::new(None);
            let finished = AtomicBool::new(false);
            std::thread::scope(|scope| {
                scope.spawn(|| serve_requests(&server, &env, &control, &finished, &restarted));
                let _stop = StopOnDrop(&finished);
                run_node_script(
                    "meetings.mjs",
                    &server,
                    &[("ROOTCAST_TEST_MEETINGS", setup.to_string())],
                );
            });
            let _ = std::fs::remove_dir_all(&control);
            drop(restarted);
        },
    );
}

/// Carries out what the script asks by creating files in `control`, until `finished`:
/// `restart` restarts the server (once) and answers `restarted`; `loss` (JSON
/// `{relay_port, viewer_port, percent}`) drops that share of the RTP/RTCP datagrams from the
/// relay's port to one page's port and answers `loss-on`; `loss-off` lifts it and answers
/// `loss-lifted`.
fn serve_requests(
    server: &TestServer,
    env: &[(&str, &str)],
    control: &Path,
    finished: &AtomicBool,
    restarted: &Mutex<Option<RestartedServer>>,
) {
    let take = |name: &str| {
        let path = control.join(name);
        let text = std::fs::read_to_string(&path).ok()?;
        std::fs::remove_file(&path).expect("removing a request");
        Some(text)
    };
    let answer = |name: &str| std::fs::write(control.join(name), "").expect("answering the script");
    while !finished.load(Ordering::SeqCst) {
        if take("restart").is_some() {
            // Only one restart: the TestServer's own process is the one stopped.
            let mut slot = restarted.lock().unwrap();
            assert!(slot.is_none(), "the script asked for a second restart");
            *slot = Some(server.restart_in_place(env));
            answer("restarted");
        }
        if let Some(request) = take("loss") {
            let request: Value = serde_json::from_str(&request).expect("a JSON loss request");
            let rules = format!(
                "table ip {LOSS_TABLE} {{\n  chain out {{\n    type filter hook output priority 0; \
                 policy accept;\n    udp sport {} udp dport {} @th,64,2 2 numgen random mod 100 < {} \
                 counter drop\n  }}\n}}\n",
                request["relay_port"], request["viewer_port"], request["percent"]
            );
            nft(&["-f", "-"], Some(&rules));
            answer("loss-on");
        }
        if take("loss-off").is_some() {
            nft(&["delete", "table", "ip", LOSS_TABLE], None);
            answer("loss-lifted");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The nftables table of the loss rule (in the test's own namespace).
const LOSS_TABLE: &str = "rootcast_meeting_loss";

/// Runs `nft ARGS` (Debian's `/usr/sbin/nft`), `stdin` fed to it; panics when it fails.
fn nft(args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let program = if Path::new("/usr/sbin/nft").is_file() {
        "/usr/sbin/nft"
    } else {
        "nft"
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `nft` (install Debian's `nftables`): {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("writing the rules");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("waiting for nft");
    assert!(
        output.status.success(),
        "nft {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The stations under county `xian-01` of the demo organisation.
fn county_stations(server: &TestServer, token: &str) -> Vec<String> {
    let (status, units) = server.rest("GET", "/api/v1/org/units", Some(token), None);
    assert_eq!(status, 200, "{units}");
    units
        .as_array()
        .expect("a list of units")
        .iter()
        .filter(|u| u["parent"] == "xian-01")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates an account with `rootcast account add`; returns `{username, password}`.
fn account(server: &TestServer, username: &str, role: &str, unit: Option<&str>) -> Value {
    let password = format!("{username}-password");
    let mut args = vec![
        "add",
        "--username",
        username,
        "--role",
        role,
        "--password",
        &password,
    ];
    if let Some(unit) = unit {
        args.extend(["--unit", unit]);
    }
    server.account(&args);
    json!({"username": username, "password": password})
}
