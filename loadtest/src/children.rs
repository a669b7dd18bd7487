//! Every child process of a run (servers and workers) is registered here, so that every
//! way out — the end of a measurement, an error, the `--duration` watchdog — kills them.

use std::process::{Child, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A `std::sync::Mutex`: held only for a quick look or a kill, never across a wait.
static CHILDREN: Mutex<Vec<(&'static str, Child)>> = Mutex::new(Vec::new());

fn lock() -> std::sync::MutexGuard<'static, Vec<(&'static str, Child)>> {
    // A panic while holding the lock leaves the list valid: keep using it.
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps `child` (its standard input open, if it was piped and not taken) until killed.
pub fn register(name: &'static str, child: Child) -> u32 {
    let pid = child.id();
    lock().push((name, child));
    pid
}

/// `Some(status)` once the child has exited; `None` while it runs (or is unknown).
pub fn exited(pid: u32) -> Option<ExitStatus> {
    let mut children = lock();
    let (_, child) = children.iter_mut().find(|(_, c)| c.id() == pid)?;
    child.try_wait().ok().flatten()
}

/// Waits up to `grace` for the child to exit by itself, then kills it; reaps it.
pub fn stop(pid: u32, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && exited(pid).is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(pid);
}

/// Kills and reaps the child.
pub fn kill(pid: u32) {
    let taken = {
        let mut children = lock();
        children
            .iter()
            .position(|(_, c)| c.id() == pid)
            .map(|i| children.swap_remove(i))
    };
    if let Some((_, mut child)) = taken {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Kills every registered child.
pub fn kill_all() {
    let all: Vec<_> = lock().drain(..).collect();
    for (name, mut child) in all {
        if child.try_wait().ok().flatten().is_none() {
            eprintln!("killing {name} (pid {})", child.id());
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
