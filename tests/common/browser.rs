//! Browser tests' shared parts: running a `tests/web/*.mjs` script (Playwright driving
//! Debian's Chromium) against a test server, and keeping WebRTC inside a private network
//! namespace.
//!
//! **Containment.** WebRTC peers gather candidates on every interface and ICE then sends
//! to them; a test must never send to the machine's real addresses (`bench.md`). So
//! [`run_contained`] creates a private network namespace `<prefix>-<pid>` with only
//! loopback and a veth pair whose two ends are both inside it (`10.213.0.1/24`,
//! `10.213.0.2/24`: Chromium does not gather candidates on loopback), re-runs the test
//! inside it with `ip netns exec` (the server and Chromium both start from there), and
//! deletes the namespace afterwards. This needs root (`CAP_SYS_ADMIN`); without it the test
//! fails saying so instead of running uncontained.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{TestServer, wait_with_timeout};

/// How long a page script may take.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// The relay's UDP address inside a [`run_contained`] namespace (one end of the veth).
pub const CONTAINED_RELAY_UDP_BIND: &str = "10.213.0.1:0";

/// Runs `node tests/web/<script> <http_url>` with `env` and fails the test unless it exits
/// 0 in time. Its output goes straight to the terminal, screenshot paths included.
pub fn run_node_script(script: &str, server: &TestServer, env: &[(&str, String)]) {
    run_node_script_within(script, server, env, SCRIPT_TIMEOUT);
}

/// [`run_node_script`] for a script that may take up to `timeout`.
pub fn run_node_script_within(
    script: &str,
    server: &TestServer,
    env: &[(&str, String)],
    timeout: Duration,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = std::env::var_os("ROOTCAST_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/node_modules"));
    let chromium = std::env::var_os("ROOTCAST_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        node_modules.join("playwright-core/package.json").is_file(),
        "playwright-core is not installed in {} (run `npm ci` in tests/, or point \
         ROOTCAST_TEST_NODE_MODULES at a node_modules folder that has it)",
        node_modules.display()
    );
    assert!(
        chromium.is_file(),
        "no browser at {} (install Debian's `chromium` package, or set ROOTCAST_TEST_CHROMIUM)",
        chromium.display()
    );
    let mut command = Command::new("node");
    command
        .arg(root.join("tests/web").join(script))
        .arg(&server.http_url)
        .current_dir(root.join("tests"))
        .env("ROOTCAST_TEST_API_KEY", &server.api_key)
        .env("ROOTCAST_TEST_NODE_MODULES", &node_modules)
        .env("ROOTCAST_TEST_CHROMIUM", &chromium)
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run `node` (install Node.js 18 or newer): {error}"));
    match wait_with_timeout(&mut child, timeout) {
        Some(status) => assert!(
            status.success(),
            "tests/web/{script} failed ({status}); its output above says which check"
        ),
        None => panic!(
            "tests/web/{script} did not finish within {} s and was killed",
            timeout.as_secs()
        ),
    }
}

/// Runs `inside` in a private network namespace (see the module docs). The test named
/// `test_name` calls this; `inside_env` is the variable that tells the copy of the test
/// running inside the namespace where it is.
pub fn run_contained(prefix: &str, inside_env: &str, test_name: &str, inside: impl FnOnce()) {
    match std::env::var(inside_env) {
        Ok(namespace) => {
            // Refuse to run anywhere but in the namespace made below: lo and the veth pair.
            let mut interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
                .expect("listing /sys/class/net")
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            interfaces.sort();
            assert_eq!(
                interfaces,
                ["lo", "rc0", "rc1"],
                "{inside_env}={namespace} is set, but this is not the test's private namespace"
            );
            inside();
        }
        Err(_) => {
            let namespace = Namespace::create(prefix);
            let exe = std::env::current_exe().expect("the test binary's path");
            let status = Command::new("ip")
                .args(["netns", "exec", &namespace.0])
                .arg(exe)
                .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
                .env(inside_env, &namespace.0)
                .stdin(Stdio::null())
                .status()
                .expect("running the test inside the namespace");
            drop(namespace);
            assert!(
                status.success(),
                "the test failed inside its network namespace ({status}); its output above \
                 says which check"
            );
        }
    }
}

/// Deletes the namespace (and the veth pair in it) when dropped.
struct Namespace(String);

impl Namespace {
    fn create(prefix: &str) -> Namespace {
        let name = format!("{prefix}-{}", std::process::id());
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
