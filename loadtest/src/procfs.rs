//! Readings from `/proc`: a process's memory and CPU time, the kernel's socket memory, the
//! machine's busy time. A reading that fails gives 0 (the process may just have exited).

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux x86-64 and arm64).
const CLK_TCK: f64 = 100.0;

fn first_number_after(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `VmRSS` and `VmHWM` of a process, KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (
        first_number_after(&text, "VmRSS:"),
        first_number_after(&text, "VmHWM:"),
    )
}

/// Open files of a process (`/proc/<pid>/fd`): sockets included.
pub fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// User + system CPU of a process (all its threads), seconds; 10 ms resolution.
pub fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after it start with field 3 (state);
    // utime and stime are fields 14 and 15.
    let Some((_, rest)) = text.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / CLK_TCK
}

/// Busy CPU of the whole machine (all cores, all but idle and iowait), seconds.
pub fn machine_busy_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let busy: f64 = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum();
    busy / CLK_TCK
}

/// Machine-wide kernel figures for TCP sockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel {
    /// `TCP: … mem` of `/proc/net/sockstat`: pages of socket buffers.
    pub tcp_mem_pages: u64,
    /// `Slab:` of `/proc/meminfo`, KiB: socket, file and epoll objects among others.
    pub slab_kib: u64,
    /// `TcpExt: ListenOverflows` of `/proc/net/netstat`.
    pub listen_overflows: u64,
}

pub fn kernel() -> Kernel {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let tcp: Vec<&str> = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let after = |key: &str| -> u64 {
        tcp.iter()
            .position(|w| *w == key)
            .and_then(|i| tcp.get(i + 1)?.parse().ok())
            .unwrap_or(0)
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = netstat.lines().collect();
    let mut tcp_ext = BTreeMap::new();
    for pair in lines.chunks(2) {
        if let [names, values] = pair
            && names.starts_with("TcpExt:")
        {
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                tcp_ext.insert(name, value.parse::<u64>().unwrap_or(0));
            }
        }
    }
    Kernel {
        tcp_mem_pages: after("mem"),
        slab_kib: first_number_after(&meminfo, "Slab:"),
        listen_overflows: tcp_ext.get("ListenOverflows").copied().unwrap_or(0),
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
