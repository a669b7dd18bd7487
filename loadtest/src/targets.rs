//! Starting the servers under test as child processes (pinned to the server's core), and
//! describing an external one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::children;
use crate::dialect::Kind;
use crate::floor::LISTENING;

/// A server under test.
#[derive(Debug)]
pub struct Target {
    pub kind: Kind,
    pub address: SocketAddr,
    /// Its process, when known (started here, or `--pid`): memory and CPU are read from it.
    pub pid: Option<u32>,
    /// rootcast: the HMAC key for connection tokens and the server API key.
    pub hmac_secret: Option<String>,
    pub api_key: Option<String>,
    /// Started here: killed (and its temporary folder removed) when dropped.
    owned: bool,
    temp_dir: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.owned
            && let Some(pid) = self.pid
        {
            children::kill(pid);
        }
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// How to start targets.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `taskset -c <core>` in front of the server, when set.
    pub core: Option<u32>,
    pub rootcast_bin: PathBuf,
    pub nats_bin: PathBuf,
    /// Pass the servers' output on to our standard error.
    pub verbose: bool,
    /// rootcast: the `bench` namespace keeps history and forces recovery
    /// (`ws-reconnect-storm`); otherwise it keeps none.
    pub bench_history: bool,
    /// rootcast: configuration settings on top of the generated file, as
    /// (`client.write_delay`, `25ms`); passed as `ROOTCAST_CLIENT_WRITE_DELAY=25ms`.
    pub server_settings: Vec<(String, String)>,
}

impl Launch {
    /// For starting rootcast: `rootcast_bin`, or the `rootcast` next to this program; no
    /// history, no extra settings, `nats-server` from the `PATH`.
    pub fn rootcast(
        core: Option<u32>,
        rootcast_bin: Option<&Path>,
        verbose: bool,
    ) -> anyhow::Result<Launch> {
        Ok(Launch {
            core,
            rootcast_bin: match rootcast_bin {
                Some(path) => path.to_owned(),
                None => std::env::current_exe()?.with_file_name("rootcast"),
            },
            nats_bin: "nats-server".into(),
            verbose,
            bench_history: false,
            server_settings: Vec::new(),
        })
    }
}

/// Parses `--server-set KEY=VALUE`: a dotted configuration key (`client.write_delay`)
/// and its value, as `rootcast serve` takes them from `ROOTCAST_…` variables.
pub fn parse_server_setting(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE, e.g. client.write_delay=25ms"))?;
    let valid = !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if !valid {
        return Err(format!(
            "{key:?}: a configuration key is lower-case words joined by dots, e.g. client.write_delay"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The environment variable `rootcast serve` reads configuration key `key` from.
fn setting_variable(key: &str) -> String {
    format!("ROOTCAST_{}", key.replace('.', "_").to_ascii_uppercase())
}

impl Target {
    pub fn external(
        kind: Kind,
        address: SocketAddr,
        pid: Option<u32>,
        hmac_secret: Option<String>,
        api_key: Option<String>,
    ) -> Self {
        Target {
            kind,
            address,
            pid,
            hmac_secret,
            api_key,
            owned: false,
            temp_dir: None,
        }
    }

    pub fn start(kind: Kind, launch: &Launch) -> anyhow::Result<Self> {
        Self::start_with_store(kind, launch, None)
    }

    /// The store file of a rootcast started with one (see [`Target::start_with_store`]).
    pub fn store_path(&self, store_file: &str) -> Option<PathBuf> {
        self.temp_dir.as_ref().map(|dir| dir.join(store_file))
    }

    /// Starts a target; a rootcast keeps its store in `store_file` inside its temporary
    /// folder instead of in memory, so the caller can open it too (accounts for the
    /// `directive` scenario).
    pub fn start_with_store(
        kind: Kind,
        launch: &Launch,
        store_file: Option<&str>,
    ) -> anyhow::Result<Self> {
        let dir = temp_folder("rootcast-loadtest")?;
        let mut target = Target {
            kind,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid: None,
            hmac_secret: None,
            api_key: None,
            owned: true,
            temp_dir: Some(dir.clone()),
        };
        let (command, marker) = match kind {
            Kind::Rootcast => {
                let secret = uuid::Uuid::new_v4().simple().to_string();
                let key = uuid::Uuid::new_v4().simple().to_string();
                let config = dir.join("rootcast.toml");
                let store = match store_file {
                    Some(name) => format!("sqlite://{}", dir.join(name).display()),
                    None => "sqlite::memory:".to_owned(),
                };
                std::fs::write(
                    &config,
                    rootcast_config(&secret, &key, &store, launch.bench_history),
                )?;
                target.hmac_secret = Some(secret);
                target.api_key = Some(key);
                if !launch.rootcast_bin.exists() {
                    bail!(
                        "no rootcast binary at {} (build it with `cargo build --release --bin rootcast` or pass --rootcast-bin)",
                        launch.rootcast_bin.display()
                    );
                }
                let mut command = pinned_command(launch.core, &launch.rootcast_bin);
                for (key, value) in &launch.server_settings {
                    command.env(setting_variable(key), value);
                }
                command
                    .arg("serve")
                    .arg("--config")
                    .arg(&config)
                    .current_dir(&dir);
                (command, "rootcast listening on http://")
            }
            Kind::Floor => {
                let mut command = pinned_command(launch.core, &std::env::current_exe()?);
                command.args(["floor", "--listen", "127.0.0.1:0"]);
                (command, LISTENING)
            }
            Kind::Nats => {
                let config = dir.join("nats.conf");
                std::fs::write(&config, NATS_CONFIG)?;
                let mut command = pinned_command(launch.core, &launch.nats_bin);
                command.arg("-c").arg(&config);
                (command, "Listening for websocket clients on ws://")
            }
        };
        let (pid, address) = spawn_and_find(command, marker, kind.name(), launch.verbose)?;
        target.pid = Some(pid);
        target.address = address;
        Ok(target)
    }
}

/// A new folder under the system's temporary folder, `<prefix>-<pid>-<uuid>`, for a
/// server's configuration and files (the caller removes it).
pub fn temp_folder(prefix: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The command that starts a server, pinned to `core` when given. It inherits none of this
/// process's `ROOTCAST_…` variables: `rootcast serve` refuses variables that name no config
/// key, and the server's settings come from the config file written here.
pub fn pinned_command(core: Option<u32>, program: &Path) -> Command {
    let mut command = match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(program);
            command
        }
        None => Command::new(program),
    };
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROOTCAST_") {
            command.env_remove(name);
        }
    }
    command
}

/// A configuration for `rootcast serve`: the default namespaces `rootcast serve` needs
/// (`sys`, `unit`, `ack`) plus `bench`, which any authenticated client may subscribe to and
/// which keeps no presence, and no history unless `bench_history` (then 10,000
/// publications for 10 minutes, recovery forced); the store at `store`; ports chosen by the
/// kernel; the relay on 127.0.0.1 only (it then announces only that address), up to
/// 1,000 WHEP viewers per stream (`whep-viewers`).
fn rootcast_config(secret: &str, api_key: &str, store: &str, bench_history: bool) -> String {
    let history = if bench_history {
        "history_size = 10000\nhistory_ttl = \"10m\"\nforce_recovery = true\n"
    } else {
        ""
    };
    format!(
        r#"[http]
address = "127.0.0.1:0"
[log]
level = "warn"
[client.token]
hmac_secret_key = "{secret}"
[http_api]
key = "{api_key}"
[store]
url = "{store}"
[relay]
udp_bind = "127.0.0.1:0"
max_viewers_per_stream = 1000
[[channel.namespaces]]
name = "sys"
allow_subscribe_for_client = true
allow_subscribe_for_anonymous = true
[[channel.namespaces]]
name = "unit"
presence = true
protected = true
[[channel.namespaces]]
name = "ack"
protected = true
[[channel.namespaces]]
name = "bench"
allow_subscribe_for_client = true
{history}"#
    )
}

/// nats-server with a WebSocket listener on a port the kernel chooses; its client port is
/// random too, so it never meets the instance on 4222.
const NATS_CONFIG: &str = r#"host: "127.0.0.1"
port: -1
max_connections: 100000
websocket {
  listen: "127.0.0.1:-1"
  no_tls: true
}
"#;

/// Starts `command` and waits (at most 30 s) for a line of its output holding `marker`
/// followed by its address.
fn spawn_and_find(
    command: Command,
    marker: &str,
    name: &'static str,
    verbose: bool,
) -> anyhow::Result<(u32, SocketAddr)> {
    spawn_until(command, name, verbose, marker, |line| {
        let at = line.find(marker)?;
        let rest = &line[at + marker.len()..];
        rest.split(['/', ' ']).next()?.parse().ok()
    })
}

/// Starts `command` (registered in `children`) and waits at most 30 s for a line of its
/// output that `found` recognises (`expected` says what it looks for, in the error);
/// returns its pid and what `found` made of the line. Its output is passed on to our
/// standard error when `verbose`, and drained either way.
pub fn spawn_until<T>(
    mut command: Command,
    name: &'static str,
    verbose: bool,
    expected: &str,
    found: impl Fn(&str) -> Option<T>,
) -> anyhow::Result<(u32, T)> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}: {command:?}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if verbose {
                    eprintln!("[{name}] {line}");
                }
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    // Its standard input stays open as long as the child is registered (the floor exits
    // when it closes).
    let pid = children::register(name, child);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(value) = found(&line) {
                    return Ok((pid, value));
                }
                seen.push(line);
            }
            Err(_) => {
                children::kill(pid);
                let tail = seen[seen.len().saturating_sub(15)..].join("\n  ");
                bail!(
                    "{name} did not start (no {expected:?} line within 30 s); its output:\n  {tail}"
                );
            }
        }
    }
}

impl Target {
    /// rootcast only: the server's own count of connections it closed, by code (from
    /// `rootcast_disconnects_total` of `GET /metrics`), e.g. `{"3008": 10}` for slow
    /// clients. `None` for other servers or when the metrics cannot be read.
    pub fn rootcast_disconnects(&self) -> Option<BTreeMap<String, u64>> {
        if self.kind != Kind::Rootcast {
            return None;
        }
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(5)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        Some(parse_disconnects(&text))
    }
}

/// `rootcast_disconnects_total{code="3008"} 10` → `{"3008": 10}`.
fn parse_disconnects(metrics: &str) -> BTreeMap<String, u64> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("rootcast_disconnects_total{")?;
            let (labels, value) = rest.split_once("} ")?;
            let code = labels.split("code=\"").nth(1)?.split('"').next()?;
            Some((code.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn disconnect_counts_are_read_from_the_metrics_text() {
        let text = "# HELP x\nrootcast_disconnects_total{code=\"3008\"} 10\nrootcast_disconnects_total{code=\"3012\"} 2\nrootcast_connections 5\n";
        let parsed = super::parse_disconnects(text);
        assert_eq!(parsed.get("3008"), Some(&10));
        assert_eq!(parsed.get("3012"), Some(&2));
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn server_settings_become_the_variables_rootcast_reads() {
        let (key, value) = super::parse_server_setting("client.write_delay=25ms").unwrap();
        assert_eq!(
            (key.as_str(), value.as_str()),
            ("client.write_delay", "25ms")
        );
        assert_eq!(super::setting_variable(&key), "ROOTCAST_CLIENT_WRITE_DELAY");
        let (key, value) = super::parse_server_setting("client.token.hmac_secret_key=a=b").unwrap();
        assert_eq!(value, "a=b", "only the first '=' separates");
        assert_eq!(
            super::setting_variable(&key),
            "ROOTCAST_CLIENT_TOKEN_HMAC_SECRET_KEY"
        );
        for bad in [
            "client.write_delay",
            "=1",
            "Client.X=1",
            "client.=1",
            "a b=1",
        ] {
            assert!(
                super::parse_server_setting(bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
