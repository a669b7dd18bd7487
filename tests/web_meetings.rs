//! The meeting pages in headless Chromium (`tests/web/meetings.mjs`): the publish page
//! sends the fake camera into a live meeting; the meeting-room TV (`/tv`) and two viewer
//! pages (`/meeting`) play it; a viewer asks, the other votes, the moderator approves and
//! puts it on screen, the expert answers, a chat message is deleted — every page shows each
//! step live. Then the server is restarted on the same address and store, and the TV comes
//! back to live video and the current state by itself; then the TV alone loses its network
//! for 7 s (every packet of its hub connections and of its WebRTC session dropped) and comes
//! back the same way. The TV shows the viewer page's link as a QR code;
//! [`the_join_qr_code_decodes_to_the_viewer_page`] decodes the hub's code.
//!
//! The TV reaches the hub through a TCP forwarder of this test ([`TvForwarder`]) on its own
//! port, so its traffic can be told from the other pages' (one Chromium serves them all and
//! shares connections between pages of one origin).
//!
//! Contained in a private network namespace `rc-meet-<pid>` (`tests/common/browser.rs` says
//! how and why); needs root, node, Chromium and playwright-core.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script_within};
use common::{RestartedServer, TestServer};
use serde_json::{Value, json};

/// Sets the flag when dropped, so the restart watcher stops even when the script fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn meeting_pages_and_the_tv_follow_a_live_meeting_and_the_tv_recovers_from_a_restart() {
    run_contained(
        "rc-meet",
        "ROOTCAST_WEB_MEETINGS_NETNS",
        "meeting_pages_and_the_tv_follow_a_live_meeting_and_the_tv_recovers_from_a_restart",
        || {
            let env = [("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND)];
            let server = TestServer::start_with_env("", &env);
            let admin = server.login_as("hq-admin", "admin", None);
            let stations = county_stations(&server, &admin);
            assert!(
                stations.len() >= 3,
                "three stations in xian-01: {stations:?}"
            );

            let moderator = server.add_account("xian-mod", "moderator", Some("xian"));
            let expert = server.add_account("flood-expert", "expert", None);
            let viewers: Vec<Value> = (0..2)
                .map(|i| server.add_account(&format!("viewer-{i}"), "member", Some(&stations[i])))
                .collect();
            let credential = server.unit_credential(&stations[2], "room");

            // The script asks for a restart and for packet loss by creating files here (see
            // `serve_requests`).
            let control =
                std::env::temp_dir().join(format!("rootcast-web-meetings-{}", std::process::id()));
            std::fs::create_dir_all(&control).expect("a control folder");
            let setup = json!({
                "moderator": moderator,
                "expert": expert,
                "viewers": viewers,
                "units": &stations[..3],
                "screen": {"unit": stations[2], "credential": credential},
                "control": control,
            });

            let forwarder = TvForwarder::start(&server.address);
            let setup = {
                let mut setup = setup;
                setup["screen"]["url"] = json!(format!("http://{}", forwarder.address));
                setup
            };
            let restarted: Mutex<Option<RestartedServer>> = Mutex::new(None);
            let finished = AtomicBool::new(false);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    serve_requests(
                        &server,
                        &env,
                        &control,
                        &finished,
                        &restarted,
                        forwarder.port,
                    )
                });
                let _stop = StopOnDrop(&finished);
                // A long script (a restart, an outage, a weak link): its own watchdog is
                // 290 s.
                run_node_script_within(
                    "meetings.mjs",
                    &server,
                    &[("ROOTCAST_TEST_MEETINGS", setup.to_string())],
                    Duration::from_secs(300),
                );
            });
            let _ = std::fs::remove_dir_all(&control);
            drop(restarted);
        },
    );
}

/// `GET /api/v1/meetings/{id}/join-link`: the viewer page's address on the address the
/// request reached, and a QR code that decodes (rqrr, from the SVG drawn into a bitmap) to
/// exactly that link; for the meeting's audience only.
#[test]
fn the_join_qr_code_decodes_to_the_viewer_page() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let stations = county_stations(&server, &admin);
    assert!(stations.len() >= 2, "two stations in xian-01: {stations:?}");
    let (status, scheduled) = server.rest(
        "POST",
        "/api/v1/meetings",
        Some(&admin),
        Some(json!({
            "title": "QR check",
            "starts_at": common::unix_now() * 1000,
            "target": {"units": [stations[0]]},
        })),
    );
    assert_eq!(status, 201, "{scheduled}");
    let id = scheduled["meeting"]["id"].as_str().expect("a meeting id");
    let path = format!("/api/v1/meetings/{id}/join-link");
    let member = server.login_as("qr-member", "member", Some(&stations[0]));

    let (status, answer) = server.rest("GET", &path, Some(&member), None);
    assert_eq!(status, 200, "{answer}");
    let link = format!("{}/meeting?id={id}", server.http_url);
    assert_eq!(answer["link"], link.as_str(), "{answer}");
    assert_eq!(answer["meeting"], id);
    let svg = answer["qr_svg"].as_str().expect("qr_svg");
    assert!(svg.contains("<svg"), "an SVG document: {svg:.200}");
    assert_eq!(decode_qr_svg(svg), link, "what the QR code says");

    // Behind a TLS-terminating proxy the link says https.
    let bearer = format!("Bearer {member}");
    let (status, body) = common::http_request(
        &server.address,
        "GET",
        &path,
        &[("Authorization", &bearer), ("X-Forwarded-Proto", "https")],
        b"",
    );
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    let https = format!("https://{}/meeting?id={id}", server.address);
    assert_eq!(answer["link"], https.as_str());
    assert_eq!(decode_qr_svg(answer["qr_svg"].as_str().unwrap()), https);

    // Only for who may join: a member of another unit, no login, an unknown meeting.
    let outsider = server.login_as("qr-outsider", "member", Some(&stations[1]));
    assert_eq!(server.rest("GET", &path, Some(&outsider), None).0, 403);
    assert_eq!(server.rest("GET", &path, None, None).0, 401);
    let unknown = "/api/v1/meetings/no-such-meeting/join-link";
    assert_eq!(server.rest("GET", unknown, Some(&member), None).0, 404);
}

/// Draws the QR code of an SVG from the `qrcode` crate (a white `rect`, then one `path` of
/// `M{x} {y}h{w}v{h}H{x}V{y}` squares) into a greyscale bitmap and decodes it with rqrr.
fn decode_qr_svg(svg: &str) -> String {
    let attribute = |name: &str| -> usize {
        let start = svg.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        let end = start + svg[start..].find('"').expect("a closing quote");
        svg[start..end].parse().expect("a number")
    };
    let (width, height) = (attribute("width"), attribute("height"));
    let start = svg.find(" d=\"").expect("a path") + 4;
    let path = &svg[start..start + svg[start..].find('"').expect("the end of the path")];
    let mut dark = vec![false; width * height];
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let numbers: Vec<usize> = square
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect();
        // x y w h x y
        let [x, y, w, h, ..] = numbers[..] else {
            panic!("an unexpected path segment: {square}")
        };
        for row in y..(y + h).min(height) {
            for column in x..(x + w).min(width) {
                dark[row * width + column] = true;
            }
        }
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        if dark[y * width + x] { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the SVG");
    let (_, content) = grids[0].decode().expect("a readable QR code");
    content
}

/// Carries out what the script asks by creating files in `control`, until `finished`:
/// `restart` restarts the server (once) and answers `restarted`; `loss` (JSON
/// `{relay_port, viewer_port, percent}`) drops that share of the RTP/RTCP datagrams from the
/// relay's port to one page's port and answers `loss-on`; `loss-off` lifts it and answers
/// `loss-lifted`; `outage` (JSON `{relay_port, tv_ports}`) drops every packet to and from
/// the TV's forwarder port (`tv_port`) and every datagram between the relay's port and the
/// TV's WebRTC ports, and answers `outage-on`; `outage-off` lifts that and answers
/// `outage-lifted`.
fn serve_requests(
    server: &TestServer,
    env: &[(&str, &str)],
    control: &Path,
    finished: &AtomicBool,
    restarted: &Mutex<Option<RestartedServer>>,
    tv_port: u16,
) {
    let take = |name: &str| {
        let path = control.join(name);
        let text = std::fs::read_to_string(&path).ok()?;
        std::fs::remove_file(&path).expect("removing a request");
        Some(text)
    };
    let answer = |name: &str| std::fs::write(control.join(name), "").expect("answering the script");
    while !finished.load(Ordering::SeqCst) {
        if take("restart").is_some() {
            // Only one restart: the TestServer's own process is the one stopped.
            let mut slot = restarted.lock().unwrap();
            assert!(slot.is_none(), "the script asked for a second restart");
            *slot = Some(server.restart_in_place(env));
            answer("restarted");
        }
        if let Some(request) = take("loss") {
            let request: Value = serde_json::from_str(&request).expect("a JSON loss request");
            let rules = format!(
                "table ip {LOSS_TABLE} {{\n  chain out {{\n    type filter hook output priority 0; \
                 policy accept;\n    udp sport {} udp dport {} @th,64,2 2 numgen random mod 100 < {} \
                 counter drop\n  }}\n}}\n",
                request["relay_port"], request["viewer_port"], request["percent"]
            );
            nft(&["-f", "-"], Some(&rules));
            answer("loss-on");
        }
        if take("loss-off").is_some() {
            nft(&["delete", "table", "ip", LOSS_TABLE], None);
            answer("loss-lifted");
        }
        if let Some(request) = take("outage") {
            let request: Value = serde_json::from_str(&request).expect("a JSON outage request");
            let relay = request["relay_port"].as_u64().expect("relay_port");
            let ports: Vec<String> = request["tv_ports"]
                .as_array()
                .expect("tv_ports")
                .iter()
                .map(|p| p.as_u64().expect("a port").to_string())
                .collect();
            assert!(!ports.is_empty(), "the TV's WebRTC ports");
            let ports = ports.join(", ");
            // Everything local passes the output hook once, whichever way it goes.
            let rules = format!(
                "table ip {OUTAGE_TABLE} {{\n  chain out {{\n    type filter hook output priority 0; \
                 policy accept;\n    tcp dport {tv_port} counter drop\n    tcp sport {tv_port} \
                 counter drop\n    udp sport {relay} udp dport {{ {ports} }} counter drop\n    \
                 udp dport {relay} udp sport {{ {ports} }} counter drop\n  }}\n}}\n"
            );
            nft(&["-f", "-"], Some(&rules));
            answer("outage-on");
        }
        if take("outage-off").is_some() {
            nft(&["delete", "table", "ip", OUTAGE_TABLE], None);
            answer("outage-lifted");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The nftables table of the loss rule (in the test's own namespace).
const LOSS_TABLE: &str = "rootcast_meeting_loss";
/// The nftables table of the TV's network outage.
const OUTAGE_TABLE: &str = "rootcast_tv_outage";

/// A TCP forwarder on a port of its own to the server's address, for the TV page only:
/// each accepted connection gets its own connection to the server and two threads copying
/// bytes (a half-close is passed on). When the server cannot be reached the accepted
/// connection is reset, as a refused connection would be. Runs until the process ends.
struct TvForwarder {
    /// `127.0.0.1:PORT`
    address: String,
    port: u16,
}

impl TvForwarder {
    fn start(server: &str) -> TvForwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the TV's forwarder");
        let port = listener.local_addr().expect("its address").port();
        let server = server.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                match TcpStream::connect(&server) {
                    Ok(upstream) => {
                        let _ = client.set_nodelay(true);
                        let _ = upstream.set_nodelay(true);
                        pipe(&client, &upstream);
                        pipe(&upstream, &client);
                    }
                    Err(_) => {
                        // SO_LINGER 0 is not in std: dropping after a read shutdown is
                        // close enough (the page sees the connection closed at once).
                        let _ = client.shutdown(Shutdown::Both);
                    }
                }
            }
        });
        TvForwarder {
            address: format!("127.0.0.1:{port}"),
            port,
        }
    }
}

/// Copies `from` into `to` on a thread until `from` ends, then half-closes `to`.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}

/// Runs `nft ARGS` (Debian's `/usr/sbin/nft`), `stdin` fed to it; panics when it fails.
fn nft(args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let program = if Path::new("/usr/sbin/nft").is_file() {
        "/usr/sbin/nft"
    } else {
        "nft"
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `nft` (install Debian's `nftables`): {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("writing the rules");
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("waiting for nft");
    assert!(
        output.status.success(),
        "nft {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The stations under county `xian-01` of the demo organisation.
fn county_stations(server: &TestServer, token: &str) -> Vec<String> {
    let (status, units) = server.rest("GET", "/api/v1/org/units", Some(token), None);
    assert_eq!(status, 200, "{units}");
    units
        .as_array()
        .expect("a list of units")
        .iter()
        .filter(|u| u["parent"] == "xian-01")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}
