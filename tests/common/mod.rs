//! Shared helpers for the integration tests of the `rootcast` binary: start the real
//! server on a free port, make tokens, call the server API.
#![allow(dead_code)] // Each test file uses a different subset.

pub mod browser;
pub mod ws;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const HMAC_SECRET: &str = "integration-test-secret";
pub const API_KEY: &str = "integration-test-api-key";

/// A `rootcast serve` child process on a free port, killed on drop.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub http_url: String,
    /// `ws://127.0.0.1:PORT/connection/websocket`
    pub ws_url: String,
    /// `127.0.0.1:PORT`
    pub address: String,
    pub api_key: String,
    pub hmac_secret: String,
    child: Child,
    config_path: PathBuf,
    store_path: PathBuf,
}

impl TestServer {
    /// Starts the server with `extra_toml` as its configuration file. The listen
    /// address, token secret and API key are set through `ROOTCAST_…` variables, so the
    /// file may define any table.
    pub fn start(extra_toml: &str) -> TestServer {
        Self::start_with_env(extra_toml, &[])
    }

    pub fn start_with_env(extra_toml: &str, env: &[(&str, &str)]) -> TestServer {
        let config_path = std::env::temp_dir().join(format!(
            "rootcast-test-{}-{}.toml",
            std::process::id(),
            unique()
        ));
        std::fs::write(&config_path, extra_toml).expect("writing the test config");
        // Each server gets its own SQLite file, removed on drop.
        let store_path = config_path.with_extension("db");
        let mut command = rootcast_command();
        command
            .args(["serve", "--config"])
            .arg(&config_path)
            .args(["--address", "127.0.0.1:0"])
            .env("ROOTCAST_CLIENT_TOKEN_HMAC_SECRET_KEY", HMAC_SECRET)
            .env("ROOTCAST_HTTP_API_KEY", API_KEY)
            // A free UDP port for the relay, so test servers can run side by side.
            .env("ROOTCAST_RELAY_UDP_BIND", "127.0.0.1:0")
            // No recordings unless a test asks for them (ROOTCAST_RELAY_RECORDING_DIR in
            // `env`): test servers are killed, which would leave `.part` files in ./data.
            .env("ROOTCAST_RELAY_RECORDING_DIR", "")
            .env(
                "ROOTCAST_STORE_URL",
                format!("sqlite://{}", store_path.display()),
            )
            .env(
                "ROOTCAST_LOG_LEVEL",
                std::env::var("ROOTCAST_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the rootcast binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the banner, then keeps draining stdout so the child never blocks on it.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some(url) = line.strip_prefix("rootcast listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                    sent = true;
                }
            }
        });
        let http_url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("rootcast did not print its listening address within 30 s ({status:?})");
            }
        };
        let address = http_url.trim_start_matches("http://").to_owned();
        TestServer {
            ws_url: format!("ws://{address}/connection/websocket"),
            http_url,
            address,
            api_key: API_KEY.to_owned(),
            hmac_secret: HMAC_SECRET.to_owned(),
            child,
            config_path,
            store_path,
        }
    }

    /// An HS256 connection token for `user`, expiring in `ttl_secs` (0 = never), with
    /// `extra_claims` (an object) merged in.
    pub fn token(&self, user: &str, ttl_secs: u64, extra_claims: Value) -> String {
        let mut claims = serde_json::json!({ "sub": user });
        if ttl_secs > 0 {
            claims["exp"] = (unix_now() + ttl_secs).into();
        }
        if let Value::Object(extra) = extra_claims {
            for (key, value) in extra {
                claims[key] = value;
            }
        }
        rootcast_hub_token(&self.hmac_secret, &claims)
    }

    /// Calls `POST /api/<method>` with the API key. Returns (HTTP status, JSON body).
    pub fn api(&self, method: &str, body: Value) -> (u16, Value) {
        let (status, body) = http_request(
            &self.address,
            "POST",
            &format!("/api/{method}"),
            &[
                ("X-API-Key", &self.api_key),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json)
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the process to exit; kills it when
    /// the time is up.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_with_timeout(&mut self.child, timeout)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `rootcast account ARGS…` against this server's store (the server keeps
    /// running; SQLite takes both). Panics with the output when it fails; returns stdout.
    pub fn account(&self, args: &[&str]) -> String {
        let output = rootcast_command()
            .arg("account")
            .args(["--config"])
            .arg(&self.config_path)
            .args(args)
            .env(
                "ROOTCAST_STORE_URL",
                format!("sqlite://{}", self.store_path.display()),
            )
            .output()
            .expect("running rootcast account");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "rootcast account {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Creates an account with `rootcast account add`, password `<username>-password`, in
    /// `unit` if given. Returns `{username, password}`: a login body, and what the browser
    /// scripts log in with.
    pub fn add_account(&self, username: &str, role: &str, unit: Option<&str>) -> Value {
        let password = format!("{username}-password");
        let mut args = vec![
            "add",
            "--username",
            username,
            "--role",
            role,
            "--password",
            &password,
        ];
        if let Some(unit) = unit {
            args.extend(["--unit", unit]);
        }
        self.account(&args);
        serde_json::json!({"username": username, "password": password})
    }

    /// Creates an account with a known password and logs it in: returns the token.
    pub fn login_as(&self, username: &str, role: &str, unit: Option<&str>) -> String {
        let login = self.add_account(username, role, unit);
        let (status, body) = self.rest("POST", "/api/v1/login", None, Some(login));
        assert_eq!(status, 200, "login of {username}: {body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Issues a unit credential with `rootcast account credential` (what a meeting-room TV
    /// signs in with) and returns it: the `rcu_…` word of the command's output.
    pub fn unit_credential(&self, unit: &str, label: &str) -> String {
        let printed = self.account(&["credential", "--unit", unit, "--label", label]);
        printed
            .split_whitespace()
            .find(|word| word.starts_with("rcu_"))
            .unwrap_or_else(|| panic!("a credential in: {printed}"))
            .to_owned()
    }

    /// Calls the REST API: `method path` with an optional bearer token and JSON body.
    /// Returns (HTTP status, JSON body or `null`).
    pub fn rest(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, response) =
            http_request(&self.address, method, path, &headers, body.as_bytes());
        (
            status,
            serde_json::from_slice(&response).unwrap_or(Value::Null),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.store_path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The `rootcast` binary with none of this process's `ROOTCAST_…` variables: the binary
/// rejects unknown ones, and the test runner sets some of its own (`ROOTCAST_TEST_…`).
pub fn rootcast_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rootcast"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ROOTCAST_") {
            command.env_remove(key);
        }
    }
    command
}

/// Waits for `child` up to `timeout`; kills it and returns `None` when the time is up.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn rootcast_hub_token(secret: &str, claims: &Value) -> String {
    rootcast_hub::token::issue_hs256(secret, claims).expect("signing a test token")
}

/// A minimal blocking HTTP/1.1 request (`Connection: close`). Returns (status, body).
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(address).expect("connecting to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("setting a read timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("writing the request");
    stream.write_all(body).expect("writing the body");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("reading the response");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status code");
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// A `rootcast serve` started again by [`TestServer::restart_in_place`]: the same address,
/// configuration file and store as the [`TestServer`] it replaces. Killed on drop (the
/// `TestServer` still removes the files when it is dropped).
pub struct RestartedServer {
    child: Child,
}

impl Drop for RestartedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer {
    /// Stops this server (SIGTERM, as an operator's restart does; SIGKILL after 15 s), waits
    /// until the process has exited, and starts `rootcast serve` again on the same
    /// address, configuration file and store with the same settings and `env` (as given to
    /// [`TestServer::start_with_env`]). Returns once the new process prints its listening
    /// address (at most 30 s). Works through `&self`, so a test can call it from another
    /// thread while a browser script uses the server.
    pub fn restart_in_place(&self, env: &[(&str, &str)]) -> RestartedServer {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        // Exited (a zombie until the TestServer reaps it on drop) or killed after 15 s.
        let pid = self.child.id();
        let exited = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    stat.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !exited() {
            if std::time::Instant::now() >= deadline {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            TcpStream::connect(&self.address).is_err(),
            "the old server has exited but its address still accepts connections"
        );
        let mut command = rootcast_command();
        command
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .args(["--address", &self.address])
            .env("ROOTCAST_CLIENT_TOKEN_HMAC_SECRET_KEY", &self.hmac_secret)
            .env("ROOTCAST_HTTP_API_KEY", &self.api_key)
            .env("ROOTCAST_RELAY_UDP_BIND", "127.0.0.1:0")
            .env("ROOTCAST_RELAY_RECORDING_DIR", "")
            .env(
                "ROOTCAST_STORE_URL",
                format!("sqlite://{}", self.store_path.display()),
            )
            .env(
                "ROOTCAST_LOG_LEVEL",
                std::env::var("ROOTCAST_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the rootcast binary again");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && line.starts_with("rootcast listening on ") {
                    let _ = tx.send(());
                    sent = true;
                }
            }
        });
        let restarted = RestartedServer { child };
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the restarted server printed its listening address within 30 s");
        restarted
    }
}
