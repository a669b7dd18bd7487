//! The official SDKs against the real `rootcast` binary: centrifuge-js under Node (with
//! cent.js for the server API) and centrifuge-python (with cent). Each test starts its own
//! server on a free port, runs one program from `tests/sdk/` with a timeout, and fails with
//! the program's output when it exits non-zero.
//!
//! The programs need the npm packages in `tests/node_modules` and a Python venv with
//! `tests/requirements.txt`; `scripts/test.sh` installs both and points the tests at them
//! with `ROOTCAST_TEST_NODE_MODULES` and `ROOTCAST_TEST_PYTHON`. Without them the tests
//! fail and say how to install them; `ROOTCAST_SKIP_SDK_TESTS=1` skips them instead.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;

/// Longest a program may run; each also has its own, shorter, overall timeout.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(120);

/// The `chat` namespace the programs use: history and recovery, presence, join/leave, and
/// subscribe / publish / presence / history allowed to clients without extra tokens.
fn chat_namespace(history_size: usize) -> String {
    format!(
        r#"
[[channel.namespaces]]
name = "chat"
history_size = {history_size}
history_ttl = "300s"
force_recovery = true
presence = true
join_leave = true
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_presence_for_subscriber = true
allow_history_for_subscriber = true
"#
    )
}

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sdk")
}

/// Whether the SDK tests are to be skipped (`ROOTCAST_SKIP_SDK_TESTS=1`); says so.
fn skipped(test: &str) -> bool {
    let skip = std::env::var("ROOTCAST_SKIP_SDK_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("{test}: skipped (ROOTCAST_SKIP_SDK_TESTS=1)");
    }
    skip
}

fn node_modules() -> PathBuf {
    let dir = std::env::var_os("ROOTCAST_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node_modules"));
    for package in ["centrifuge", "cent.js", "ws"] {
        assert!(
            dir.join(package).join("package.json").is_file(),
            "the npm package {package} is not in {} — run scripts/test.sh (or `npm ci` in tests/), \
             or set ROOTCAST_SKIP_SDK_TESTS=1 to skip the SDK tests",
            dir.display()
        );
    }
    dir
}

fn python() -> PathBuf {
    let python = std::env::var_os("ROOTCAST_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/rootcast-venv/bin/python"))
        })
        .expect("neither ROOTCAST_TEST_PYTHON nor HOME is set");
    assert!(
        python.is_file(),
        "no Python venv at {} — run scripts/test.sh (it makes one with tests/requirements.txt), \
         or set ROOTCAST_SKIP_SDK_TESTS=1 to skip the SDK tests",
        python.display()
    );
    python
}

/// The environment every program gets: where the server is, and how to authenticate.
fn program_env(server: &TestServer, command: &mut Command) {
    command
        .env("ROOTCAST_WS_URL", &server.ws_url)
        .env("ROOTCAST_API_URL", format!("{}/api", server.http_url))
        .env("ROOTCAST_API_KEY", &server.api_key)
        .env("ROOTCAST_HMAC_SECRET", &server.hmac_secret)
        .env(
            "ROOTCAST_TOKEN_ALICE",
            server.token("alice", 600, json!({})),
        )
        .env("ROOTCAST_TOKEN_BOB", server.token("bob", 600, json!({})))
        // Everything is on 127.0.0.1: no proxy from the environment may get in the way.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to its end (killing it after `PROGRAM_TIMEOUT`) and panics, with its
/// output, unless it exits 0.
fn run_program(name: &str, mut command: Command) {
    command
        .current_dir(sdk_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: can't start {command:?}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < PROGRAM_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => panic!("{name}: waiting for the program: {e}"),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let output = format!(
        "--- {name}: stdout ---\n{stdout}\n--- {name}: stderr ---\n{stderr}\n--- end of {name} ---"
    );
    match status {
        Some(status) if status.success() => {
            println!("{output}\n{name}: passed in {:.1?}", started.elapsed());
        }
        Some(status) => panic!("{name} failed ({status}):\n{output}"),
        None => panic!("{name} was killed after running {PROGRAM_TIMEOUT:?}:\n{output}"),
    }
}

fn run_js(test: &str, history_size: usize, args: &[&str]) {
    if skipped(test) {
        return;
    }
    let modules = node_modules();
    let server = TestServer::start(&chat_namespace(history_size));
    let mut command = Command::new("node");
    command
        .arg(sdk_dir().join("js").join(args[0]))
        .args(&args[1..]);
    command.env("ROOTCAST_TEST_NODE_MODULES", modules);
    program_env(&server, &mut command);
    run_program(test, command);
}

fn run_python(test: &str, history_size: usize, args: &[&str]) {
    if skipped(test) {
        return;
    }
    let python = python();
    let server = TestServer::start(&chat_namespace(history_size));
    let mut command = Command::new(python);
    command
        .arg(sdk_dir().join("python").join(args[0]))
        .args(&args[1..]);
    program_env(&server, &mut command);
    run_program(test, command);
}

/// centrifuge-js: JWT connect, subscribe, publications from cent.js, presence, join/leave,
/// history; a server disconnect with a reconnect code, publications while down, and a
/// recovery that delivers each missed publication exactly once, in order.
#[test]
fn centrifuge_js_recovers_missed_publications() {
    run_js(
        "centrifuge_js_recovers_missed_publications",
        100,
        &["recovery.mjs", "recovered"],
    );
}

/// centrifuge-js: more publications missed than the history keeps → `recovered: false`.
#[test]
fn centrifuge_js_reports_unrecovered_when_history_is_too_short() {
    run_js(
        "centrifuge_js_reports_unrecovered_when_history_is_too_short",
        3,
        &["recovery.mjs", "unrecovered"],
    );
}

/// centrifuge-python with cent: the same as the centrifuge-js recovery test.
#[test]
fn centrifuge_python_recovers_missed_publications() {
    run_python(
        "centrifuge_python_recovers_missed_publications",
        100,
        &["recovery.py", "recovered"],
    );
}

/// centrifuge-python: more publications missed than the history keeps → `recovered: False`.
#[test]
fn centrifuge_python_reports_unrecovered_when_history_is_too_short() {
    run_python(
        "centrifuge_python_reports_unrecovered_when_history_is_too_short",
        3,
        &["recovery.py", "unrecovered"],
    );
}

/// Every server API method through cent (Python), checked against what centrifuge-python
/// clients see.
#[test]
fn cent_python_server_api() {
    run_python("cent_python_server_api", 100, &["server_api.py"]);
}
