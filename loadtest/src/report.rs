//! The results: `results.json` (everything measured), `summary.md` (medians over rounds,
//! ratios to the floor and to nats-server) and the SVG plots it shows.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use serde::Serialize;
use serde_json::{Value, json};

use crate::coordinator::{FanoutArgs, Measurement, RunArgs};
use crate::dialect::Kind;
use crate::svg::{Chart, Series, line_chart};

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub machine: Value,
    pub pinning: String,
    pub args: RunArgs,
    pub fanout_args: Option<FanoutArgs>,
    pub measurements: Vec<Measurement>,
}

pub fn machine() -> Value {
    let text = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let command = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    json!({
        // Not `available_parallelism`: this process is pinned to one core by now.
        "nproc": text("/proc/stat").lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count(),
        "kernel": text("/proc/sys/kernel/osrelease"),
        "mem_total_kib": text("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0),
        "somaxconn": text("/proc/sys/net/core/somaxconn"),
        "open_files_limit": command("sh", &["-c", "ulimit -n"]),
        "git": command("git", &["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"]),
        "nats_server": command("nats-server", &["--version"]),
        "date": command("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    })
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// A target's name, with its number of processes when more than one: "rootcast ×2".
pub fn label(kind: Kind, processes: usize) -> String {
    match processes {
        1 => kind.name().to_owned(),
        k => format!("{} ×{k}", kind.name()),
    }
}

/// One line per measurement for the log.
pub fn one_line(m: &Measurement) -> String {
    let mut line = format!(
        "-> {} {} {}:",
        m.scenario,
        label(m.target, m.server_processes),
        m.connections
    );
    if let Some(idle) = &m.idle {
        let _ = write!(
            line,
            " ready {} failed {}, {} connects/s, server RSS {} KiB/conn",
            idle.ready,
            idle.failed,
            idle.connects_per_sec,
            idle.server_rss_kib_per_conn
                .map_or("?".to_owned(), |v| v.to_string())
        );
        if m.server_processes > 1 {
            let each: Vec<String> = idle
                .by_server_process
                .iter()
                .map(|p| p.rss_kib_per_conn.to_string())
                .collect();
            let _ = write!(line, " (each process: {})", each.join(" / "));
        }
    }
    if let Some(f) = &m.fanout {
        let _ = write!(
            line,
            "; {}/{} deliveries, server CPU {} µs/delivery, load generator {} % of a core; latency p50 {} p99 {} max {} ms; last subscriber p50 {} p99 {} ms",
            f.deliveries,
            f.expected,
            f.server_cpu_us_per_delivery
                .map_or("?".to_owned(), |v| v.to_string()),
            f.loadgen_cpu_percent,
            ms(f.latency_us.p50),
            ms(f.latency_us.p99),
            ms(f.latency_us.max),
            ms(f.time_to_last_us.p50),
            ms(f.time_to_last_us.p99)
        );
    }
    if let Some(codes) = m
        .fanout
        .as_ref()
        .and_then(|f| f.server_disconnects.as_ref())
        && !codes.is_empty()
    {
        let _ = write!(line, "; the server closed {codes:?} (by code)");
    }
    if let Some(error) = m.fanout.as_ref().and_then(|f| f.publisher_error.as_ref()) {
        let _ = write!(line, "; publisher: {error}");
    }
    if let Some(storm) = &m.storm {
        let _ = write!(
            line,
            "; storm: {}/{} back in {} s ({} connects/s), {} recovered ({} %), {} lost, {} duplicates",
            storm.reconnected,
            storm.dropped,
            storm.storm_secs,
            storm.connects_per_sec,
            storm.recovered,
            storm.recovered_percent,
            storm.lost,
            storm.duplicates
        );
    }
    if let Some(error) = &m.error {
        let _ = write!(line, " FAILED: {error}");
    }
    line
}

/// Median, minimum and maximum.
fn spread(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let median = if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    Some((median, values[0], values[values.len() - 1]))
}

/// The figures the summary quotes, by name.
const FIGURES: &[(&str, &str)] = &[
    ("rss_per_conn", "server RSS per connection (KiB)"),
    ("cpu_per_delivery", "server CPU per delivery (µs)"),
    ("latency_p50", "latency per delivery p50 (ms)"),
    ("latency_p99", "latency per delivery p99 (ms)"),
    ("latency_max", "latency per delivery max (ms)"),
    ("last_p50", "time to last subscriber p50 (ms)"),
    ("last_p99", "time to last subscriber p99 (ms)"),
    ("deliveries_per_sec", "deliveries per second"),
    ("loadgen_cpu_percent", "load generator CPU (% of its core)"),
    ("other_cpu_percent", "other processes' CPU (% of a core)"),
    ("connects_per_sec", "ramp: connects per second"),
    ("rss_mib", "server RSS, idle (MiB)"),
    ("rss_after_mib", "server RSS after the fan-out (MiB)"),
    ("rss_peak_mib", "server RSS peak (MiB)"),
    ("slow", "slow clients (not reading)"),
    ("storm_connects_per_sec", "storm: reconnects per second"),
    ("storm_secs", "storm: drop → every client back (s)"),
    (
        "storm_reconnect_p99",
        "storm: drop → back, per client p99 (ms)",
    ),
    (
        "storm_recovered_percent",
        "storm: recovered (% of reconnects)",
    ),
    ("storm_lost", "storm: publications lost (all clients)"),
    ("storm_duplicates", "storm: duplicates"),
    (
        "storm_cpu_per_reconnect",
        "storm: server CPU per reconnect (µs)",
    ),
];

fn figure(m: &Measurement, name: &str) -> Option<f64> {
    let idle = m.idle.as_ref();
    let f = m.fanout.as_ref();
    let ms = |us: u64| us as f64 / 1000.0;
    match name {
        "rss_per_conn" => idle?.server_rss_kib_per_conn,
        "rss_mib" => idle?.server_rss_kib.map(|k| k as f64 / 1024.0),
        "connects_per_sec" => Some(idle?.connects_per_sec),
        "cpu_per_delivery" => f?.server_cpu_us_per_delivery,
        "latency_p50" => Some(ms(f?.latency_us.p50)),
        "latency_p99" => Some(ms(f?.latency_us.p99)),
        "latency_max" => Some(ms(f?.latency_us.max)),
        "last_p50" => Some(ms(f?.time_to_last_us.p50)),
        "last_p99" => Some(ms(f?.time_to_last_us.p99)),
        "deliveries_per_sec" => Some(f?.deliveries_per_sec),
        "rss_after_mib" => f?.server_rss_after_kib.map(|k| k as f64 / 1024.0),
        "rss_peak_mib" => f?.server_rss_peak_kib.map(|k| k as f64 / 1024.0),
        "slow" => Some(f?.slow as f64),
        "storm_connects_per_sec" => Some(m.storm.as_ref()?.connects_per_sec),
        "storm_secs" => Some(m.storm.as_ref()?.storm_secs),
        "storm_reconnect_p99" => Some(ms(m.storm.as_ref()?.reconnect_us.p99)),
        "storm_recovered_percent" => Some(m.storm.as_ref()?.recovered_percent),
        "storm_lost" => Some(m.storm.as_ref()?.lost as f64),
        "storm_duplicates" => Some(m.storm.as_ref()?.duplicates as f64),
        "storm_cpu_per_reconnect" => m.storm.as_ref()?.server_cpu_us_per_reconnect,
        "loadgen_cpu_percent" => Some(f?.loadgen_cpu_percent),
        "other_cpu_percent" => Some(f.map_or(idle?.other_cpu_percent, |f| f.other_cpu_percent)),
        _ => None,
    }
}

/// The successful rounds of (target, connections).
fn successful(
    report: &Report,
    kind: Kind,
    connections: usize,
) -> impl Iterator<Item = &Measurement> {
    report
        .measurements
        .iter()
        .filter(move |m| m.target == kind && m.connections == connections && m.error.is_none())
}

/// The median of a figure over the successful rounds of (target, connections).
fn median(report: &Report, kind: Kind, connections: usize, name: &str) -> Option<(f64, f64, f64)> {
    spread(
        successful(report, kind, connections)
            .filter_map(|m| figure(m, name))
            .collect(),
    )
}

/// Each server process's own RSS growth per connection, the median over the successful
/// rounds of (target, connections): "36.2 / 36.4".
fn rss_per_conn_each_process(report: &Report, kind: Kind, connections: usize) -> String {
    let rounds: Vec<_> = successful(report, kind, connections)
        .filter_map(|m| Some(&m.idle.as_ref()?.by_server_process))
        .collect();
    let processes = rounds.iter().map(|p| p.len()).max().unwrap_or(0);
    if processes == 0 {
        return "–".to_owned();
    }
    (0..processes)
        .map(|i| {
            let values = rounds
                .iter()
                .filter_map(|p| Some(p.get(i)?.rss_kib_per_conn))
                .collect();
            spread(values).map_or("–".to_owned(), |(m, _, _)| number(m))
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn number(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(value: Option<(f64, f64, f64)>, rounds: usize) -> String {
    match value {
        None => "–".to_owned(),
        Some((m, _, _)) if rounds < 2 => number(m),
        Some((m, lo, hi)) => format!("{} [{}–{}]", number(m), number(lo), number(hi)),
    }
}

/// Writes results.json, the plots and summary.md into `out`; returns the summary.
pub fn write(out: &Path, report: &Report) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    let kinds: Vec<Kind> = report.args.targets.clone();
    let processes = report.args.server_processes;
    let heading = |kind: Kind| label(kind, processes);
    let counts: BTreeSet<usize> = report.measurements.iter().map(|m| m.connections).collect();
    let rounds = report.args.repeat;
    let fanout = report.fanout_args.is_some();
    let mut md = String::new();
    let _ = writeln!(md, "# rootcast-loadtest: {}\n", report.scenario);
    let _ = writeln!(
        md,
        "Machine: {} cores, Linux {}, {:.0} GiB; {}; git {}. {}.",
        report.machine["nproc"],
        report.machine["kernel"].as_str().unwrap_or(""),
        report.machine["mem_total_kib"].as_f64().unwrap_or(0.0) / 1048576.0,
        report.machine["nats_server"].as_str().unwrap_or(""),
        report.machine["git"].as_str().unwrap_or(""),
        report.pinning
    );
    if let Some(f) = &report.fanout_args {
        let _ = writeln!(
            md,
            "\nWorkload: one channel, {} publications of {} B, {} every {} ms on a fixed schedule; latency from the scheduled send time.",
            f.publications,
            f.payload,
            if f.burst > 1 {
                format!("a burst of {}", f.burst)
            } else {
                "one".to_owned()
            },
            f.interval_ms
        );
    }
    let _ = writeln!(
        md,
        "\nFigures are medians of {rounds} round(s){}.",
        if rounds > 1 { " [min–max]" } else { "" }
    );
    if processes > 1 {
        let _ = writeln!(
            md,
            "\nEach target ran as {processes} processes on the server core (worker i connected to process i % {processes}): server memory and CPU are sums over them, per connection and per delivery of the whole; \"each process\" gives each one's own."
        );
    }
    let names: Vec<&(&str, &str)> = FIGURES
        .iter()
        .filter(|(name, _)| match *name {
            "slow" => report.scenario == "ws-slow",
            storm if storm.starts_with("storm_") => report.scenario == "ws-reconnect-storm",
            "rss_per_conn" | "rss_mib" | "connects_per_sec" | "other_cpu_percent" => true,
            _ => fanout,
        })
        .collect();
    for &n in &counts {
        let _ = writeln!(md, "\n## {n} connections\n");
        let _ = write!(md, "| |");
        for &kind in &kinds {
            let _ = write!(md, " {} |", heading(kind));
        }
        let _ = write!(md, "\n| --- |");
        for _ in &kinds {
            let _ = write!(md, " ---: |");
        }
        md.push('\n');
        for (name, title) in &names {
            let _ = write!(md, "| {title} |");
            for &kind in &kinds {
                let _ = write!(md, " {} |", cell(median(report, kind, n, name), rounds));
            }
            md.push('\n');
        }
        if processes > 1 {
            let _ = write!(md, "| server RSS per connection, each process (KiB) |");
            for &kind in &kinds {
                let _ = write!(md, " {} |", rss_per_conn_each_process(report, kind, n));
            }
            md.push('\n');
        }
    }
    // Ratios of medians.
    let ratio = |a: Kind, b: Kind, n: usize, name: &str| -> String {
        match (median(report, a, n, name), median(report, b, n, name)) {
            (Some((x, _, _)), Some((y, _, _))) if y > 0.0 => format!("{:.2}", x / y),
            _ => "–".to_owned(),
        }
    };
    let pairs: Vec<(Kind, Kind)> = [
        (Kind::Rootcast, Kind::Floor),
        (Kind::Rootcast, Kind::Nats),
        (Kind::Nats, Kind::Floor),
    ]
    .into_iter()
    .filter(|(a, b)| kinds.contains(a) && kinds.contains(b))
    .collect();
    if !pairs.is_empty() {
        let _ = writeln!(md, "\n## Ratios (same run, medians)\n");
        let mut columns: Vec<(&str, &str)> = vec![("rss_per_conn", "RSS/conn")];
        if fanout {
            columns.extend([
                ("cpu_per_delivery", "CPU/delivery"),
                ("latency_p99", "latency p99"),
                ("last_p99", "last subscriber p99"),
            ]);
        }
        let _ = write!(md, "| connections | ratio |");
        for (_, title) in &columns {
            let _ = write!(md, " {title} |");
        }
        let _ = write!(md, "\n| ---: | --- |");
        for _ in &columns {
            let _ = write!(md, " ---: |");
        }
        md.push('\n');
        for &n in &counts {
            for &(a, b) in &pairs {
                let _ = write!(md, "| {n} | {} / {} |", heading(a), heading(b));
                for (name, _) in &columns {
                    // The floor keeps next to nothing per connection in user space: a ratio
                    // of memory to it says nothing.
                    let value = if *name == "rss_per_conn" && b == Kind::Floor {
                        "–".to_owned()
                    } else {
                        ratio(a, b, n, name)
                    };
                    let _ = write!(md, " {value} |");
                }
                md.push('\n');
            }
        }
    }
    // Plots.
    let mut plots = Vec::new();
    let largest = counts.iter().copied().next_back().unwrap_or(0);
    if fanout {
        let ticks: Vec<(f64, String)> = [
            (0.0, "0%"),
            (1.0, "90%"),
            (2.0, "99%"),
            (3.0, "99.9%"),
            (4.0, "99.99%"),
            (4.5, "max"),
        ]
        .into_iter()
        .map(|(x, t)| (x, t.to_owned()))
        .collect();
        let series: Vec<Series> = kinds
            .iter()
            .filter_map(|&kind| {
                let m = report
                    .measurements
                    .iter()
                    .find(|m| m.target == kind && m.connections == largest && m.error.is_none())?;
                let points = m
                    .fanout
                    .as_ref()?
                    .latency_curve
                    .iter()
                    .map(|&(q, us)| {
                        let x = if q >= 1.0 { 4.5 } else { -(1.0 - q).log10() };
                        (x, us as f64 / 1000.0)
                    })
                    .collect();
                Some(Series {
                    name: heading(kind),
                    points,
                })
            })
            .collect();
        plots.push((
            "latency_distribution.svg",
            format!("Latency per delivery at {largest} subscribers (first round)"),
            line_chart(
                &Chart {
                    title: &format!("Latency per delivery, {largest} subscribers"),
                    x_label: "percentile",
                    y_label: "ms after the scheduled send (log scale)",
                    x_ticks: Some(ticks),
                    y_log: true,
                },
                &series,
            ),
        ));
        plots.push((
            "latency_vs_subscribers.svg",
            "Time to the last subscriber, p99 (median over rounds)".to_owned(),
            sweep_chart(
                report,
                &kinds,
                &counts,
                "last_p99",
                "Time to the last subscriber, p99",
                "ms (log scale)",
                true,
            ),
        ));
        plots.push((
            "cpu_vs_subscribers.svg",
            "Server CPU per delivery (median over rounds)".to_owned(),
            sweep_chart(
                report,
                &kinds,
                &counts,
                "cpu_per_delivery",
                "Server CPU per delivery",
                "µs",
                false,
            ),
        ));
    }
    plots.push((
        "memory_vs_connections.svg",
        "Server RSS with every client idle (median over rounds)".to_owned(),
        sweep_chart(
            report,
            &kinds,
            &counts,
            "rss_mib",
            "Server RSS, idle",
            "MiB",
            false,
        ),
    ));
    let _ = writeln!(md, "\n## Plots\n");
    for (file, caption, svg) in &plots {
        std::fs::write(out.join(file), svg)?;
        let _ = writeln!(md, "![{caption}]({file})\n");
    }
    let failures: Vec<String> = report
        .measurements
        .iter()
        .filter_map(|m| {
            m.error.as_ref().map(|e| {
                format!(
                    "- {} at {} (round {}): {e}",
                    heading(m.target),
                    m.connections,
                    m.round + 1
                )
            })
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "## Failed measurements\n\n{}", failures.join("\n"));
    }
    std::fs::write(out.join("summary.md"), &md)?;
    Ok(md)
}

#[allow(clippy::too_many_arguments)] // three call sites, each a different figure
fn sweep_chart(
    report: &Report,
    kinds: &[Kind],
    counts: &BTreeSet<usize>,
    name: &str,
    title: &str,
    unit: &str,
    y_log: bool,
) -> String {
    let series: Vec<Series> = kinds
        .iter()
        .map(|&kind| Series {
            name: label(kind, report.args.server_processes),
            points: counts
                .iter()
                .filter_map(|&n| median(report, kind, n, name).map(|(m, _, _)| (n as f64, m)))
                .collect(),
        })
        .collect();
    line_chart(
        &Chart {
            title,
            x_label: "connections",
            y_label: unit,
            x_ticks: Some(counts.iter().map(|&n| (n as f64, n.to_string())).collect()),
            y_log,
        },
        &series,
    )
}
