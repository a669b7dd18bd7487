//! The server processes of one WebSocket measurement and how the clients are spread over
//! them: one target, or `--server-processes` K copies of it (each its own process, folder
//! and secrets, all pinned to the server core), so that a run can pass the 20,000 open
//! files one process may have here. Worker i connects to copy i % K; the workers are a
//! multiple of K, so every copy gets the same share of the clients (± 1). Memory and CPU
//! are read from every copy and summed: the machine's cost.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::coordinator::RunArgs;
use crate::dialect::Kind;
use crate::procfs;
use crate::targets::{Launch, Target};

/// The most connections one server process is given when there are several: a process may
/// open 20,000 files here, and each connection takes one.
pub const MAX_CONNECTIONS_PER_PROCESS: usize = 19_500;

/// Worker processes and source addresses 127.0.0.2 to 127.0.0.251.
const MAX_WORKERS: usize = 250;

/// The number of workers for each of `args.connections`, after checking that the run can be
/// spread as asked: `--workers`, or one per 8,000 connections (at least 2) rounded up to a
/// multiple of `--server-processes` K, never more than the connections (still a multiple of
/// K); with K > 1, no `--address` and at most [`MAX_CONNECTIONS_PER_PROCESS`] per process.
pub fn worker_counts(args: &RunArgs) -> anyhow::Result<Vec<usize>> {
    let servers = args.server_processes;
    if servers == 0 {
        bail!("--server-processes: at least 1");
    }
    if servers > 1 && args.address.is_some() {
        bail!(
            "--server-processes {servers} starts its own servers: it cannot go with --address (one server that is already running)"
        );
    }
    if args.workers % servers != 0 {
        bail!(
            "--workers {} is not a multiple of --server-processes {servers}: every server process must get as many workers as the others",
            args.workers
        );
    }
    args.connections
        .iter()
        .map(|&connections| {
            let per_process = connections.div_ceil(servers);
            if servers > 1 && per_process > MAX_CONNECTIONS_PER_PROCESS {
                bail!(
                    "{connections} connections over {servers} server processes is {per_process} per process, more than {MAX_CONNECTIONS_PER_PROCESS} (a process may open 20,000 files): use --server-processes {} or more",
                    connections.div_ceil(MAX_CONNECTIONS_PER_PROCESS)
                );
            }
            if connections < servers {
                bail!(
                    "{connections} connections cannot be spread over {servers} server processes"
                );
            }
            let workers = match args.workers {
                0 => connections.div_ceil(8000).max(2).next_multiple_of(servers),
                n => n,
            };
            // No worker without connections.
            let workers = workers.min(connections - connections % servers);
            if workers > MAX_WORKERS {
                bail!(
                    "{workers} workers: at most {MAX_WORKERS} (source addresses 127.0.0.2 to 127.0.0.251)"
                );
            }
            Ok(workers)
        })
        .collect()
}

/// Worker `index`'s clients out of `connections` over `workers`: the first user number and
/// how many (the first `connections % workers` workers take one more).
pub fn share(connections: usize, workers: usize, index: usize) -> (usize, usize) {
    let (each, extra) = (connections / workers, connections % workers);
    (
        index * each + index.min(extra),
        each + usize::from(index < extra),
    )
}

/// The copy of the server that worker `index` connects to, out of `servers`.
pub fn server_of(index: usize, servers: usize) -> usize {
    index % servers
}

/// One target, or K copies of it.
pub struct Servers {
    pub copies: Vec<Target>,
}

impl Servers {
    /// The server at `--address`, or `--server-processes` copies of `kind` started here
    /// (killed when dropped). Several copies are announced on standard error.
    pub fn start(args: &RunArgs, kind: Kind, launch: &Launch) -> anyhow::Result<Servers> {
        let copies: Vec<Target> = match args.address {
            Some(address) => vec![Target::external(
                kind,
                address,
                args.pid,
                args.secret.clone(),
                args.api_key.clone(),
            )],
            None => (0..args.server_processes)
                .map(|_| Target::start(kind, launch))
                .collect::<anyhow::Result<_>>()?,
        };
        let servers = Servers { copies };
        if servers.copies.len() > 1 {
            let list = |items: Vec<String>| items.join(", ");
            eprintln!(
                "{} {} processes: pids {}; addresses {}",
                servers.copies.len(),
                kind.name(),
                list(servers.pids().iter().map(u32::to_string).collect()),
                list(
                    servers
                        .copies
                        .iter()
                        .map(|t| t.address.to_string())
                        .collect()
                )
            );
        }
        Ok(servers)
    }

    /// The copy worker `index` connects to.
    pub fn of_worker(&self, index: usize) -> &Target {
        &self.copies[server_of(index, self.copies.len())]
    }

    /// The copies whose process is known (all of them, but for `--address` without
    /// `--pid`), with their place.
    fn known(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.copies
            .iter()
            .enumerate()
            .filter_map(|(index, t)| Some((index, t.pid?)))
    }

    pub fn pids(&self) -> Vec<u32> {
        self.known().map(|(_, pid)| pid).collect()
    }

    /// User + system CPU seconds of every known process, summed; `None` when none is known.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pids = self.pids();
        (!pids.is_empty()).then(|| pids.iter().map(|&p| procfs::cpu_seconds(p)).sum())
    }

    /// (place, pid, `VmRSS`, `VmHWM` in KiB) of every known process.
    pub fn rss_each(&self) -> Vec<ProcessRss> {
        self.known()
            .map(|(index, pid)| {
                let (rss_kib, peak_kib) = procfs::rss_kib(pid);
                ProcessRss {
                    index,
                    pid,
                    rss_kib,
                    peak_kib,
                }
            })
            .collect()
    }

    /// rootcast: the connections every copy closed, by close code, summed; `None` for other
    /// servers or when a copy's metrics cannot be read.
    pub fn disconnects(&self) -> Option<BTreeMap<String, u64>> {
        let mut total = BTreeMap::new();
        for target in &self.copies {
            for (code, count) in target.rootcast_disconnects()? {
                *total.entry(code).or_default() += count;
            }
        }
        Some(total)
    }
}

/// One reading of a server process's memory.
#[derive(Debug, Clone, Copy)]
pub struct ProcessRss {
    /// Its place among the copies.
    pub index: usize,
    pub pid: u32,
    pub rss_kib: u64,
    /// `VmHWM`: its peak so far.
    pub peak_kib: u64,
}

/// (`VmRSS`, `VmHWM`) summed over `each`; `None` when no process is known.
pub fn rss_sum(each: &[ProcessRss]) -> Option<(u64, u64)> {
    (!each.is_empty()).then(|| {
        each.iter().fold((0, 0), |(rss, peak), p| {
            (rss + p.rss_kib, peak + p.peak_kib)
        })
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{MAX_CONNECTIONS_PER_PROCESS, server_of, share, worker_counts};
    use crate::coordinator::RunArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn counts(args: &str) -> anyhow::Result<Vec<usize>> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.split_whitespace()))?;
        worker_counts(&cli.run)
    }

    #[test]
    fn one_server_process_keeps_the_worker_counts_of_before() {
        assert_eq!(
            counts("--connections 1,1000,8000,8001,19000,30000").unwrap(),
            [1, 2, 2, 2, 3, 4]
        );
        assert_eq!(counts("--connections 5 --workers 7").unwrap(), [5]);
        assert_eq!(counts("--connections 500 --workers 3").unwrap(), [3]);
    }

    #[test]
    fn automatic_workers_are_rounded_up_to_a_multiple_of_the_server_processes() {
        // 1000: 2 workers; 17,000: 3 → 4; 30,000: 4; 38,000: 5 → 6 (2 processes).
        assert_eq!(
            counts("--server-processes 2 --connections 2,1000,17000,30000,38000").unwrap(),
            [2, 2, 4, 4, 6]
        );
        // 3 processes: 2 → 3, and never more workers than connections (4 connections: 3).
        assert_eq!(
            counts("--server-processes 3 --connections 4,7,1000,50000").unwrap(),
            [3, 3, 3, 9]
        );
        assert_eq!(
            counts("--server-processes 2 --workers 4 --connections 3,1000").unwrap(),
            [2, 4]
        );
    }

    #[test]
    fn every_server_process_gets_an_equal_share_of_the_clients() {
        for (connections, servers) in [(300, 2), (1001, 2), (38_999, 2), (10, 3), (58_000, 3)] {
            let args = format!("--server-processes {servers} --connections {connections}");
            let workers = counts(&args).unwrap()[0];
            assert_eq!(workers % servers, 0, "{args}: {workers} workers");
            let mut per_server = vec![0; servers];
            let mut next_user = 0;
            for index in 0..workers {
                let (first_user, count) = share(connections, workers, index);
                assert_eq!(first_user, next_user, "users follow on, worker {index}");
                assert!(count > 0, "{args}: worker {index} has no client");
                next_user += count;
                per_server[server_of(index, servers)] += count;
            }
            assert_eq!(next_user, connections);
            let (least, most) = (
                *per_server.iter().min().unwrap(),
                *per_server.iter().max().unwrap(),
            );
            assert!(most - least <= 1, "{args}: {per_server:?}");
            assert!(
                most <= MAX_CONNECTIONS_PER_PROCESS,
                "{args}: {per_server:?}"
            );
        }
        // Workers alternate between two processes.
        let servers: Vec<usize> = (0..6).map(|i| server_of(i, 2)).collect();
        assert_eq!(servers, [0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn runs_that_cannot_be_spread_as_asked_are_refused_with_the_numbers() {
        let refused = |args: &str| counts(args).unwrap_err().to_string();
        let error = refused("--server-processes 2 --connections 1000,39002");
        assert!(
            error.contains("39002 connections over 2 server processes is 19501 per process")
                && error.contains("more than 19500")
                && error.contains("--server-processes 3"),
            "{error}"
        );
        assert!(counts("--server-processes 2 --connections 39000").is_ok());
        let error = refused("--server-processes 2 --workers 3");
        assert!(
            error.contains("--workers 3 is not a multiple of --server-processes 2"),
            "{error}"
        );
        let error = refused("--server-processes 2 --address 127.0.0.1:8000 --targets floor");
        assert!(error.contains("cannot go with --address"), "{error}");
        assert!(counts("--server-processes 1 --address 127.0.0.1:8000").is_ok());
        assert!(refused("--server-processes 0").contains("at least 1"));
        assert!(refused("--server-processes 3 --connections 2").contains("cannot be spread"));
        assert!(refused("--workers 251 --connections 1000").contains("at most 250"));
    }
}
