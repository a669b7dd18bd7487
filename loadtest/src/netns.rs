//! The private network a `whep-viewers` run with Janus needs. Janus gathers ICE candidates
//! on every interface but `lo` and will not gather on `lo` at all, so it cannot be kept on
//! loopback like rootcast's relay. Before it starts any thread, such a run moves itself
//! into a new, unnamed network namespace (`unshare(CLONE_NEWNET)`) with `lo` and one veth
//! pair whose two ends both stay inside (`jv0` 10.77.0.1 for Janus, `jv1` 10.77.0.2 for the
//! peers). Every thread and process it starts afterwards (the servers, Janus, the workers)
//! lives there too, and the namespace disappears with the last of them: there is nothing
//! to delete, however the run ends. Both addresses are local, so their traffic takes the
//! namespace's loopback path, as rootcast's does (rootcast is measured in there too).
//!
//! Invariants: [`enter_private_network`] runs while the process has one thread (a namespace
//! change applies to the calling thread only); nothing of the run can reach an interface
//! outside the namespace. Needs root (`CAP_SYS_ADMIN`) and iproute2.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sched::CloneFlags;

/// Janus's address and the interface it gathers on.
pub const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const SERVER_INTERFACE: &str = "jv0";
/// The peers' address (publisher and viewers).
pub const PEER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER_INTERFACE: &str = "jv1";

/// Moves this process into a new network namespace with `lo` and the veth pair up.
pub fn enter_private_network() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    if !status
        .lines()
        .any(|l| l.split_whitespace().eq(["Threads:", "1"]))
    {
        bail!("the network namespace must be entered before any thread starts");
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).context(
        "unshare(CLONE_NEWNET): a run with Janus needs root for its own network namespace",
    )?;
    ip(&["link", "set", "lo", "up"])?;
    ip(&[
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
        ip(&["addr", "add", &format!("{address}/24"), "dev", interface])?;
        ip(&["link", "set", interface, "up"])?;
    }
    // Datagrams between the two local addresses carry a local source: accept them.
    for interface in ["all", "default", "lo", SERVER_INTERFACE, PEER_INTERFACE] {
        for (setting, value) in [("accept_local", "1"), ("rp_filter", "0")] {
            let path = format!("/proc/sys/net/ipv4/conf/{interface}/{setting}");
            std::fs::write(&path, value).with_context(|| format!("writing {path}"))?;
        }
    }
    // A veth pair's carrier comes up a moment after both ends are set up; Janus started
    // before that finds no address to gather on.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(up(SERVER_INTERFACE)? && up(PEER_INTERFACE)?) {
        if Instant::now() > deadline {
            bail!("the veth pair {SERVER_INTERFACE}/{PEER_INTERFACE} did not come up within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "private network namespace: Janus on {SERVER_INTERFACE} {SERVER_ADDRESS}, peers on {PEER_INTERFACE} {PEER_ADDRESS}, rootcast on its loopback"
    );
    Ok(())
}

/// Whether `interface` is up with its carrier (`ip -o link show`).
fn up(interface: &str) -> anyhow::Result<bool> {
    let output = Command::new("ip")
        .args(["-o", "link", "show", "dev", interface])
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    Ok(String::from_utf8_lossy(&output.stdout).contains("state UP"))
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    if !output.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
