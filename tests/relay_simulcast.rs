//! Simulcast through the relay in headless Chromium (`tests/web/relay_simulcast.mjs`): the
//! publish page sends the fake camera as three RIDs (q/h/f), two watch pages play it, late
//! joiners must decode their first frame within 1 s of the WHEP POST (R2), and the watch
//! page's layer picker (the WHEP layer route) switches layers and audio-only while playback
//! goes on. Join times are printed (`R2 join …`).
//!
//! **Containment.** WebRTC peers gather candidates on every interface and ICE then sends
//! to them; a test must never send to the machine's real addresses (`bench.md`). So the
//! test creates a private network namespace `rc-sim-<pid>` with only loopback and a veth
//! pair whose two ends are both inside it (`10.213.0.1/24`, `10.213.0.2/24`: Chromium does
//! not gather candidates on loopback), re-runs itself inside it with `ip netns exec` (the
//! server and Chromium both start from there), and deletes the namespace afterwards. This
//! needs root (`CAP_SYS_ADMIN`); without it the test fails saying so instead of running
//! uncontained. Needs node, Chromium and playwright-core as `tests/web_page.rs` does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestServer, wait_with_timeout};

/// Set (to the namespace's name) in the copy of this test that runs inside the namespace.
const INSIDE_ENV: &str = "ROOTCAST_RELAY_SIMULCAST_NETNS";
const TEST_NAME: &str = "simulcast_late_join_and_layer_switches_in_a_real_browser";
/// The relay's UDP address inside the namespace (one end of the veth pair).
const RELAY_UDP_BIND: &str = "10.213.0.1:0";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn simulcast_late_join_and_layer_switches_in_a_real_browser() {
    match std::env::var(INSIDE_ENV) {
        Ok(namespace) => run_inside(&namespace),
        Err(_) => run_in_new_namespace(),
    }
}

/// Deletes the namespace (and the veth pair in it) when dropped.
struct Namespace(String);

impl Namespace {
    fn create() -> Namespace {
        let name = format!("rc-sim-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let namespace = Namespace(name);
        let n = namespace.0.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"]);
        ip(&[
            "-n", n, "link", "add", "rc0", "type", "veth", "peer", "name", "rc1",
        ]);
        ip(&["-n", n, "addr", "add", "10.213.0.1/24", "dev", "rc0"]);
        ip(&["-n", n, "addr", "add", "10.213.0.2/24", "dev", "rc1"]);
        ip(&["-n", n, "link", "set", "rc0", "up"]);
        ip(&["-n", n, "link", "set", "rc1", "up"]);
        namespace
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stdin(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (install iproute2): {e}"));
    assert!(
        output.status.success(),
        "`ip {}` failed: {}. This test makes a private network namespace so WebRTC stays \
         inside it, which needs root (CAP_SYS_ADMIN); it does not run uncontained.",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

fn run_in_new_namespace() {
    let namespace = Namespace::create();
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new("ip")
        .args(["netns", "exec", &namespace.0])
        .arg(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(INSIDE_ENV, &namespace.0)
        .stdin(Stdio::null())
        .status()
        .expect("running the test inside the namespace");
    drop(namespace);
    assert!(
        status.success(),
        "the test failed inside its network namespace ({status}); its output above says which check"
    );
}

fn run_inside(namespace: &str) {
    // Refuse to run anywhere but in the namespace made above: only lo and the veth pair.
    let mut interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("listing /sys/class/net")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    interfaces.sort();
    assert_eq!(
        interfaces,
        ["lo", "rc0", "rc1"],
        "{INSIDE_ENV}={namespace} is set, but this is not the test's private namespace"
    );

    let server = TestServer::start_with_env("", &[("ROOTCAST_RELAY_UDP_BIND", RELAY_UDP_BIND)]);
    run_script("relay_simulcast.mjs", &server);
}

/// Runs `node tests/web/<script> <http_url>`; fails unless it exits 0 in time.
fn run_script(script: &str, server: &TestServer) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = std::env::var_os("ROOTCAST_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/node_modules"));
    let chromium = std::env::var_os("ROOTCAST_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        node_modules.join("playwright-core/package.json").is_file(),
        "playwright-core is not installed in {} (run `npm ci` in tests/)",
        node_modules.display()
    );
    assert!(
        chromium.is_file(),
        "no browser at {} (install Debian's `chromium` package, or set ROOTCAST_TEST_CHROMIUM)",
        chromium.display()
    );
    let mut child = Command::new("node")
        .arg(root.join("tests/web").join(script))
        .arg(&server.http_url)
        .current_dir(root.join("tests"))
        .env("ROOTCAST_TEST_API_KEY", &server.api_key)
        .env("ROOTCAST_TEST_NODE_MODULES", &node_modules)
        .env("ROOTCAST_TEST_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js 18 or newer): {e}"));
    match wait_with_timeout(&mut child, SCRIPT_TIMEOUT) {
        Some(status) => assert!(
            status.success(),
            "tests/web/{script} failed ({status}); its output above says which check"
        ),
        None => panic!(
            "tests/web/{script} did not finish within {} s and was killed",
            SCRIPT_TIMEOUT.as_secs()
        ),
    }
}
