//! The private network namespace a run with Janus needs. Janus gathers ICE candidates on
//! every interface but `lo` and will not gather on `lo` at all, so it cannot be kept on
//! loopback like rootcast's relay: the run makes a namespace of its own with `lo` and one
//! veth pair whose two ends both stay inside it (`jv0` 10.77.0.1 for Janus, `jv1`
//! 10.77.0.2 for the peers), and runs the whole measurement in there, rootcast included.
//! Both addresses are local to the namespace, so their traffic takes the namespace's
//! loopback path, as rootcast's does.
//!
//! Invariants: the namespace is deleted when the run ends, however it ends (the outer
//! process waits for the inner one, then deletes it); nothing of the run can reach an
//! interface outside it. Needs root (`CAP_SYS_ADMIN`) and iproute2.

use std::net::Ipv4Addr;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Set in the re-run process: the namespace's name.
const INSIDE_ENV: &str = "ROOTCAST_LOADTEST_NAMESPACE";
/// Janus's address and the interface it gathers on.
pub const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const SERVER_INTERFACE: &str = "jv0";
/// The peers' address (publisher and viewers).
pub const PEER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER_INTERFACE: &str = "jv1";

/// Whether this process is the re-run inside a namespace made by [`rerun_inside`]; an
/// error if it claims to be but sees other interfaces than `lo` and the veth pair.
pub fn inside() -> anyhow::Result<bool> {
    if std::env::var_os(INSIDE_ENV).is_none() {
        return Ok(false);
    }
    let mut interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .context("listing /sys/class/net")?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    interfaces.sort();
    if interfaces != [SERVER_INTERFACE, PEER_INTERFACE, "lo"] {
        bail!(
            "{INSIDE_ENV} is set but this network has the interfaces {interfaces:?}, not only lo and the run's veth pair"
        );
    }
    for interface in ["all", "default", SERVER_INTERFACE, PEER_INTERFACE, "lo"] {
        for (setting, value) in [("accept_local", "1"), ("rp_filter", "0")] {
            let path = format!("/proc/sys/net/ipv4/conf/{interface}/{setting}");
            std::fs::write(&path, value).with_context(|| format!("writing {path}"))?;
        }
    }
    // A veth pair's carrier comes up a moment after both ends are set up; Janus started
    // before that finds no address to gather on.
    let deadline = Instant::now() + Duration::from_secs(5);
    let up = |interface: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{interface}/operstate"))
            .is_ok_and(|state| state.trim() == "up")
    };
    while !(up(SERVER_INTERFACE) && up(PEER_INTERFACE)) {
        if Instant::now() > deadline {
            bail!("the veth pair {SERVER_INTERFACE}/{PEER_INTERFACE} did not come up within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(true)
}

/// Runs this program again, with the same arguments, inside a new namespace, and returns
/// its exit status once it has ended and the namespace is gone.
pub fn rerun_inside() -> anyhow::Result<ExitStatus> {
    let namespace = Namespace::create()?;
    eprintln!(
        "network namespace {}: Janus on {SERVER_INTERFACE} {SERVER_ADDRESS}, peers on {PEER_INTERFACE} {PEER_ADDRESS}; the run goes on inside it",
        namespace.0
    );
    let status = Command::new("ip")
        .args(["netns", "exec", &namespace.0])
        .arg(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(INSIDE_ENV, &namespace.0)
        .stdin(Stdio::null())
        .status()
        .context("running the measurement inside the namespace")?;
    drop(namespace);
    Ok(status)
}

/// A network namespace with `lo` up and the veth pair; deleted on drop.
struct Namespace(String);

impl Namespace {
    fn create() -> anyhow::Result<Namespace> {
        let name = format!("rc-lt-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let namespace = Namespace(name);
        let n = namespace.0.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            n,
            "link",
            "add",
            SERVER_INTERFACE,
            "type",
            "veth",
            "peer",
            "name",
            PEER_INTERFACE,
        ])?;
        for (interface, address) in [
            (SERVER_INTERFACE, SERVER_ADDRESS),
            (PEER_INTERFACE, PEER_ADDRESS),
        ] {
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                interface,
            ])?;
            ip(&["-n", n, "link", "set", interface, "up"])?;
        }
        Ok(namespace)
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

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    if !output.status.success() {
        bail!(
            "`ip {}` failed (a Janus run needs root for its network namespace): {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
