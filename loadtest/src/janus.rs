//! Janus (Debian's `janus`, 1.1) as the peer of `whep-viewers`: started here with a
//! configuration of its own (the VideoRoom plugin and the HTTP transport only, one room
//! for one publisher, no session timeout), inside the run's network namespace
//! (`netns.rs`), and driven through its HTTP API (`POST /janus`, long polls for events).
//!
//! The publisher joins the room with `joinandconfigure` and its offer; each viewer is a
//! VideoRoom subscriber: `join` (Janus answers with an offer), then `start` with the
//! viewer's answer. That is the same media path as WHIP and WHEP with the HTTP signalling
//! of Janus's own API: `simple-whip-server`, which would put WHIP in front of the same
//! VideoRoom, is signalling only, and its Debian package cannot be installed next to this
//! machine's Node.js (its `nodejs` dependency conflicts with it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::children;
use crate::netns;
use crate::targets;
use crate::webrtc_peer;

/// The one room of a run and its publisher's feed id.
pub const ROOM: u64 = 1234;
pub const FEED: u64 = 4242;

/// A Janus started here; killed and its folder removed when dropped.
pub struct Janus {
    pub pid: u32,
    /// Its HTTP API (`http://<api>/janus`).
    pub api: SocketAddr,
    dir: PathBuf,
}

impl Drop for Janus {
    fn drop(&mut self) {
        children::kill(self.pid);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Janus {
    /// Starts `bin` pinned to `core` (when given) with `event_loops` shared event loops (0:
    /// Janus's default, a thread per handle), and waits for its HTTP API.
    pub fn start(
        bin: &Path,
        core: Option<u32>,
        event_loops: u32,
        verbose: bool,
    ) -> anyhow::Result<Janus> {
        let dir = targets::temp_folder("rootcast-loadtest-janus")?;
        // A free port on Janus's address; Janus binds it a moment later.
        let port = std::net::TcpListener::bind((netns::SERVER_ADDRESS, 0))
            .context("binding Janus's address (is this run inside its namespace?)")?
            .local_addr()?
            .port();
        for (file, text) in configuration(&dir, port, event_loops) {
            std::fs::write(dir.join(file), text)?;
        }
        let mut command = targets::pinned_command(core, bin);
        command
            .arg("--configs-folder")
            .arg(&dir)
            .arg("--config")
            .arg(dir.join("janus.jcfg"))
            .arg("--disable-colors");
        let marker = "JANUS REST (HTTP/HTTPS) transport plugin initialized";
        let (pid, ()) = targets::spawn_until(command, "janus", verbose, marker, |line| {
            line.contains(marker).then_some(())
        })
        .map_err(|error| {
            let _ = std::fs::remove_dir_all(&dir);
            error.context(format!(
                "starting Janus ({}; `apt-get install janus` if it is missing)",
                bin.display()
            ))
        })?;
        Ok(Janus {
            pid,
            api: SocketAddr::from((netns::SERVER_ADDRESS, port)),
            dir,
        })
    }
}

/// janus.jcfg, the HTTP transport's and the VideoRoom's files. Every other plugin,
/// transport, event handler and logger is disabled; ICE gathers on the namespace's
/// `jv0` only; full ICE (as a browser-facing deployment runs it), half trickle.
fn configuration(dir: &Path, port: u16, event_loops: u32) -> [(&'static str, String); 3] {
    // Debian's multiarch folder: x86_64-linux-gnu, aarch64-linux-gnu.
    let lib = format!("/usr/lib/{}-linux-gnu/janus", std::env::consts::ARCH);
    let event_loops = if event_loops > 0 {
        format!("\tevent_loops = {event_loops}\n")
    } else {
        String::new()
    };
    let main = format!(
        r#"general: {{
	configs_folder = "{dir}"
	plugins_folder = "{lib}/plugins"
	transports_folder = "{lib}/transports"
	events_folder = "{lib}/events"
	loggers_folder = "{lib}/loggers"
	debug_level = 4
	session_timeout = 0
{event_loops}}}
media: {{
	rtp_port_range = "20000-40000"
}}
nat: {{
	ice_enforce_list = "{interface}"
}}
plugins: {{
	disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}}
transports: {{
	disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so"
}}
events: {{
	broadcast = false
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
"#,
        dir = dir.display(),
        interface = netns::SERVER_INTERFACE,
    );
    let http = format!(
        r#"general: {{
	json = "compact"
	base_path = "/janus"
	http = true
	port = {port}
	ip = "{address}"
	https = false
}}
admin: {{
	admin_http = false
}}
"#,
        address = netns::SERVER_ADDRESS,
    );
    let videoroom = format!(
        r#"general: {{
}}
room-{ROOM}: {{
	description = "rootcast-loadtest whep-viewers"
	publishers = 1
	bitrate = 0
	fir_freq = 0
	audiocodec = "opus"
	videocodec = "vp8"
}}
"#
    );
    [
        ("janus.jcfg", main),
        ("janus.transport.http.jcfg", http),
        ("janus.plugin.videoroom.jcfg", videoroom),
    ]
}

/// One Janus session with one VideoRoom handle.
pub struct Handle {
    api: SocketAddr,
    session: u64,
    handle: u64,
}

impl Handle {
    pub async fn attach(api: SocketAddr) -> anyhow::Result<Handle> {
        let created = post(api, "/janus", json!({"janus": "create"})).await?;
        let session = id_of(&created).context("Janus's create")?;
        let attached = post(
            api,
            &format!("/janus/{session}"),
            json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
        )
        .await?;
        let handle = id_of(&attached).context("Janus's attach")?;
        Ok(Handle {
            api,
            session,
            handle,
        })
    }

    /// Sends a VideoRoom request (with a JSEP offer or answer); fails on an error of
    /// Janus or of the plugin in the response (an asynchronous request's errors come as
    /// events: see [`Handle::event`]).
    async fn message(&self, body: Value, jsep: Option<Value>) -> anyhow::Result<()> {
        let mut request = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let response = post(
            self.api,
            &format!("/janus/{}/{}", self.session, self.handle),
            request,
        )
        .await?;
        plugin_error(&response)
    }

    /// Long-polls the session's events until `wanted` picks one of this handle's events
    /// (skipping keep-alives, ICE/media notices and whatever `wanted` passes over), within
    /// `limit`; fails on an error of Janus or of the plugin, which arrive here for
    /// asynchronous requests.
    async fn event<T>(
        &self,
        limit: Duration,
        what: &str,
        wanted: impl Fn(&Value) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                bail!("Janus sent no {what} within {} s", limit.as_secs());
            }
            let (status, body) = webrtc_peer::request(
                self.api,
                "GET",
                &format!("/janus/{}?maxev=1", self.session),
                None,
                left,
            )
            .await?;
            if status != 200 {
                bail!("Janus's event poll: HTTP {status}");
            }
            let events: Value = serde_json::from_str(&body).context("Janus's event poll")?;
            for event in events.as_array().cloned().unwrap_or_else(|| vec![events]) {
                plugin_error(&event).with_context(|| format!("waiting for {what}"))?;
                if event["sender"].as_u64() != Some(self.handle) {
                    continue;
                }
                if let Some(found) = wanted(&event) {
                    return Ok(found);
                }
            }
        }
    }

    /// The next event of this handle that carries an SDP.
    async fn sdp_event(&self, what: &str) -> anyhow::Result<String> {
        self.event(Duration::from_secs(10), what, |event| {
            event["jsep"]["sdp"].as_str().map(str::to_owned)
        })
        .await
    }
}

/// Joins the room as its publisher with `offer`; returns Janus's answer.
pub async fn publish(api: SocketAddr, offer: &str) -> anyhow::Result<String> {
    let handle = Handle::attach(api).await?;
    handle
        .message(
            json!({"request": "joinandconfigure", "room": ROOM, "ptype": "publisher", "id": FEED, "display": "whep-viewers"}),
            Some(json!({"type": "offer", "sdp": offer})),
        )
        .await?;
    handle.sdp_event("the publisher's answer").await
}

/// Subscribes to the room's publisher: `join` as a subscriber, Janus's offer answered by
/// `answer` (which applies it to the viewer's peer and returns the viewer's complete
/// answer), then `start`, until Janus says `started`. The session's later events (ICE and
/// media notices) are never polled: Janus keeps them, a few per viewer, until the run ends.
pub async fn subscribe<F, Fut>(api: SocketAddr, answer: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let handle = Handle::attach(api).await?;
    handle
        .message(
            json!({"request": "join", "ptype": "subscriber", "room": ROOM, "streams": [{"feed": FEED}]}),
            None,
        )
        .await?;
    let offer = handle.sdp_event("the subscriber's offer").await?;
    let sdp = answer(offer).await?;
    handle
        .message(
            json!({"request": "start", "room": ROOM}),
            Some(json!({"type": "answer", "sdp": sdp})),
        )
        .await?;
    // `start` is answered asynchronously: `started`, or an error.
    handle
        .event(Duration::from_secs(10), "`started`", |event| {
            (event["plugindata"]["data"]["started"] == "ok").then_some(())
        })
        .await
}

/// POSTs a Janus API request (with a fresh transaction id); the JSON response, or an
/// error for HTTP failures and `"janus": "error"`.
async fn post(api: SocketAddr, path: &str, mut request: Value) -> anyhow::Result<Value> {
    request["transaction"] = json!(uuid::Uuid::new_v4().simple().to_string());
    let (status, body) = webrtc_peer::request(
        api,
        "POST",
        path,
        Some(("application/json", &request.to_string())),
        Duration::from_secs(10),
    )
    .await?;
    if status != 200 {
        bail!("Janus {path}: HTTP {status}");
    }
    let response: Value =
        serde_json::from_str(&body).with_context(|| format!("Janus {path}: not JSON"))?;
    if response["janus"] == "error" {
        bail!("Janus {path}: {}", response["error"]);
    }
    Ok(response)
}

fn id_of(response: &Value) -> anyhow::Result<u64> {
    response["data"]["id"]
        .as_u64()
        .with_context(|| format!("no id in {response}"))
}

/// An error of Janus (`"janus": "error"`) or of the VideoRoom (`error_code` in its data).
fn plugin_error(response: &Value) -> anyhow::Result<()> {
    if response["janus"] == "error" {
        bail!("Janus: {}", response["error"]);
    }
    let data = &response["plugindata"]["data"];
    if data.get("error_code").is_some() {
        bail!(
            "Janus VideoRoom: {} ({})",
            data["error"],
            data["error_code"]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_janus_and_of_the_videoroom_are_told_apart_from_success() {
        let ack = json!({"janus": "ack", "session_id": 1, "transaction": "t"});
        assert!(plugin_error(&ack).is_ok());
        let joined = json!({"janus": "event", "sender": 2, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "joined", "room": ROOM}}});
        assert!(plugin_error(&joined).is_ok());
        let no_room = json!({"janus": "event", "plugindata": {"data": {"videoroom": "event", "error_code": 426, "error": "No such room (1234)"}}});
        let error = plugin_error(&no_room).unwrap_err().to_string();
        assert!(
            error.contains("No such room") && error.contains("426"),
            "{error}"
        );
        let core = json!({"janus": "error", "error": {"code": 458, "reason": "No such session"}});
        assert!(
            plugin_error(&core)
                .unwrap_err()
                .to_string()
                .contains("No such session")
        );
    }

    #[test]
    fn the_configuration_names_the_namespace_interface_the_port_and_the_room() {
        let [(main_name, main), (http_name, http), (room_name, room)] =
            configuration(Path::new("/tmp/x"), 18088, 2);
        assert_eq!(
            (main_name, http_name, room_name),
            (
                "janus.jcfg",
                "janus.transport.http.jcfg",
                "janus.plugin.videoroom.jcfg"
            )
        );
        assert!(main.contains("ice_enforce_list = \"jv0\""), "{main}");
        assert!(main.contains("event_loops = 2") && main.contains("session_timeout = 0"));
        assert!(
            !configuration(Path::new("/tmp/x"), 1, 0)[0]
                .1
                .contains("event_loops")
        );
        assert!(http.contains("port = 18088") && http.contains("ip = \"10.77.0.1\""));
        assert!(room.contains("room-1234: {") && room.contains("videocodec = \"vp8\""));
    }
}
