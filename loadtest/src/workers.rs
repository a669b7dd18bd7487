//! Worker processes, the same for every scenario: copies of this program started as a
//! worker subcommand (`worker`, `meeting-worker`, `whep-worker`), pinned to the client core
//! when asked, registered in [`crate::children`] so every way out kills them, and spoken
//! to in JSON lines — commands on their standard input, events on their standard output.
//! What the events mean stays with the scenario; waiting on them is [`crate::pump`]'s.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::children;

/// One running worker.
pub struct WorkerProcess {
    pub pid: u32,
    /// Its place in the fleet (source address 127.0.0.(2 + index) where it opens
    /// connections of its own).
    index: usize,
    /// What it is, for messages: "worker", "meeting worker", "whep worker".
    name: &'static str,
    stdin: ChildStdin,
}

impl WorkerProcess {
    /// Its place in the fleet.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Writes `command` as one JSON line.
    pub fn send(&mut self, command: &impl Serialize) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .with_context(|| format!("{} {} (pid {}) is gone", self.name, self.index, self.pid))
    }
}

/// Starts `count` workers (`<this program> <subcommand>`, under `taskset -c <core>` when
/// `core` is set). A thread per worker reads its standard output: each line parsed as an
/// `E` is passed to `deliver(index, Some(event))`, a line that is not one is reported on
/// standard error, and the end of the output is `deliver(index, None)`. The thread stops
/// early when `deliver` returns `false` (nobody listens any more).
pub fn spawn<E, D>(
    count: usize,
    core: Option<u32>,
    subcommand: &str,
    name: &'static str,
    deliver: D,
) -> anyhow::Result<Vec<WorkerProcess>>
where
    E: DeserializeOwned,
    D: Fn(usize, Option<E>) -> bool + Clone + Send + 'static,
{
    let exe = std::env::current_exe()?;
    let mut workers = Vec::with_capacity(count);
    for index in 0..count {
        let mut command = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &core.to_string()]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        command
            .arg(subcommand)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting a {name}"))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let pid = children::register(name, child);
        let deliver = deliver.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<E>(&line) {
                    Ok(event) => {
                        if !deliver(index, Some(event)) {
                            return;
                        }
                    }
                    Err(error) => eprintln!("{name} {index}: bad event ({error}): {line}"),
                }
            }
            deliver(index, None);
        });
        workers.push(WorkerProcess {
            pid,
            index,
            name,
            stdin,
        });
    }
    Ok(workers)
}

/// The process ids of `workers`.
pub fn pids(workers: &[WorkerProcess]) -> Vec<u32> {
    workers.iter().map(|w| w.pid).collect()
}
