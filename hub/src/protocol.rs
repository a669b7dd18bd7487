//! Wire types of Centrifugo's client protocol v2 in its JSON form.
//!
//! A client frame holds one or more commands separated by `\n`; the server answers with
//! replies and pushes, also newline-separated, several per frame. Payloads (`data`,
//! `info`) are arbitrary JSON kept as raw text ([`RawValue`]) so they are never re-encoded.
//! This module only converts between bytes and types; it does no IO and holds no state.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::codes::{ClientError, Unsubscribe};

/// Raw JSON owned by a message: publication data, connection info, RPC payloads.
pub type RawJson = Box<RawValue>;

/// One command from a client. Exactly one of the method fields is expected to be set;
/// a command with none (and a non-zero id) is answered with error 104; `{}` alone is a
/// pong.
#[derive(Debug, Default, Deserialize)]
pub struct Command {
    #[serde(default)]
    pub id: u32,
    pub connect: Option<ConnectRequest>,
    pub subscribe: Option<SubscribeRequest>,
    pub unsubscribe: Option<ChannelRequest>,
    pub publish: Option<PublishRequest>,
    pub presence: Option<ChannelRequest>,
    pub presence_stats: Option<ChannelRequest>,
    pub history: Option<HistoryRequest>,
    pub ping: Option<Empty>,
    pub send: Option<SendRequest>,
    pub rpc: Option<RpcRequest>,
    pub refresh: Option<RefreshRequest>,
    pub sub_refresh: Option<SubRefreshRequest>,
}

/// An empty object (`{}`); unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    pub token: String,
    pub data: Option<RawJson>,
    pub subs: BTreeMap<String, SubscribeRequest>,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeRequest {
    pub channel: String,
    pub token: String,
    pub recover: bool,
    pub epoch: String,
    pub offset: u64,
    pub data: Option<RawJson>,
    pub positioned: bool,
    pub recoverable: bool,
    pub join_leave: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChannelRequest {
    pub channel: String,
}

#[derive(Debug, Deserialize)]
pub struct PublishRequest {
    #[serde(default)]
    pub channel: String,
    pub data: RawJson,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    pub channel: String,
    pub limit: i32,
    pub since: Option<StreamPosition>,
    pub reverse: bool,
}

#[derive(Debug, Deserialize)]
pub struct SendRequest {
    pub data: RawJson,
}

#[derive(Debug, Deserialize)]
pub struct RpcRequest {
    #[serde(default)]
    pub method: String,
    pub data: Option<RawJson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshRequest {
    pub token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubRefreshRequest {
    pub channel: String,
    pub token: String,
}

/// A place in a channel's stream: the offset of a publication and the epoch of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamPosition {
    pub offset: u64,
    pub epoch: String,
}

/// Who did something: the client and user behind a publication, join or presence entry.
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    pub user: String,
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_info: Option<RawJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<RawJson>,
}

/// A message in a channel, as stored in history and sent to subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    pub data: RawJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The result of a subscription, in a subscribe reply, a connect reply's `subs` map, or a
/// `subscribe` push for server-side subscriptions.
#[derive(Debug, Default, Serialize)]
pub struct SubscribeResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<std::sync::Arc<Publication>>,
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<RawJson>,
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Default, Serialize)]
pub struct ConnectResult {
    pub client: String,
    pub version: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<RawJson>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, SubscribeResult>,
    pub ping: u32,
    pub pong: bool,
    pub node: String,
}

#[derive(Debug, Default, Serialize)]
pub struct RefreshResult {
    pub client: String,
    pub version: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct SubRefreshResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}

#[derive(Debug, Serialize)]
pub struct PresenceResult<'a> {
    pub presence: &'a BTreeMap<String, ClientInfo>,
}

impl PresenceResult<'_> {
    pub fn to_json(&self) -> serde_json::Value {
        to_json_value(self)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PresenceStats {
    pub num_clients: u32,
    pub num_users: u32,
}

#[derive(Debug, Serialize)]
pub struct HistoryResult<'a> {
    pub publications: &'a [std::sync::Arc<Publication>],
    pub epoch: &'a str,
    pub offset: u64,
}

impl HistoryResult<'_> {
    pub fn to_json(&self) -> serde_json::Value {
        to_json_value(self)
    }
}

fn to_json_value<T: Serialize>(value: &T) -> serde_json::Value {
    // Wire types hold only strings, numbers, string-keyed maps and valid raw JSON.
    serde_json::to_value(value).expect("wire types always convert to JSON values")
}

#[derive(Debug, Serialize)]
pub struct RpcResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
}

/// Writes one reply line: `{"id":N,"<method>":<result>}`.
pub fn encode_reply<T: Serialize>(id: u32, method: &str, result: &T) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"\":");
    write_json(&mut out, result);
    out.push(b'}');
    Bytes::from(out)
}

/// Writes an error reply line: `{"id":N,"error":{…}}`.
pub fn encode_error(id: u32, error: &ClientError) -> Bytes {
    encode_reply(id, "error", error)
}

/// A publication push, encoded once and shared by every subscriber:
/// `{"push":{"channel":"c","pub":{…}}}`.
pub fn encode_publication_push(channel: &str, publication: &Publication) -> Bytes {
    encode_push(channel, "pub", publication)
}

/// `{"push":{"channel":"c","<kind>":<body>}}`.
pub fn encode_push<T: Serialize>(channel: &str, kind: &str, body: &T) -> Bytes {
    let mut out = Vec::with_capacity(64 + channel.len());
    out.extend_from_slice(b"{\"push\":{\"channel\":");
    write_json(&mut out, channel);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\":");
    write_json(&mut out, body);
    out.extend_from_slice(b"}}");
    Bytes::from(out)
}

/// Join and leave pushes carry the client info under `info`.
#[derive(Serialize)]
pub struct JoinLeave<'a> {
    pub info: &'a ClientInfo,
}

/// `{"push":{"channel":"c","unsubscribe":{"code":…,"reason":…}}}`.
pub fn encode_unsubscribe_push(channel: &str, unsubscribe: Unsubscribe) -> Bytes {
    encode_push(channel, "unsubscribe", &unsubscribe)
}

/// The server's ping: an empty object.
pub const PING: &[u8] = b"{}";

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing our own wire types into a Vec cannot fail: they hold only strings,
    // numbers, maps with string keys and already-valid raw JSON.
    serde_json::to_writer(out, value).expect("wire types always serialize");
}

/// Splits a client frame into its non-empty, newline-separated command lines.
pub fn command_lines(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    frame
        .split(|b| *b == b'\n')
        .map(|line| line.trim_ascii())
        .filter(|line| !line.is_empty())
}

/// Parses one command line. `Err` means the line is not a JSON command object at all.
pub fn parse_command(line: &[u8]) -> Result<Command, serde_json::Error> {
    serde_json::from_slice(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawJson {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn publication_push_matches_centrifugo_json() {
        let publication = Publication {
            data: raw(r#"{"text":"hi"}"#),
            info: None,
            offset: 7,
            tags: None,
        };
        let bytes = encode_publication_push("chat:room", &publication);
        assert_eq!(
            &bytes[..],
            br#"{"push":{"channel":"chat:room","pub":{"data":{"text":"hi"},"offset":7}}}"#
        );
    }

    #[test]
    fn reply_has_id_and_method() {
        let bytes = encode_reply(3, "publish", &serde_json::json!({}));
        assert_eq!(&bytes[..], br#"{"id":3,"publish":{}}"#);
        let bytes = encode_error(4, &ClientError::UNKNOWN_CHANNEL);
        assert_eq!(
            &bytes[..],
            br#"{"id":4,"error":{"code":102,"message":"unknown channel"}}"#
        );
    }

    #[test]
    fn channel_names_are_escaped() {
        let bytes = encode_unsubscribe_push("a\"b", Unsubscribe::SERVER);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["push"]["channel"], "a\"b");
        assert_eq!(value["push"]["unsubscribe"]["code"], 2000);
    }

    #[test]
    fn frames_split_into_commands() {
        let frame = b"{\"id\":1,\"ping\":{}}\n\n  {\"id\":2,\"rpc\":{\"method\":\"m\"}}\n";
        let lines: Vec<_> = command_lines(frame).collect();
        assert_eq!(lines.len(), 2);
        let cmd = parse_command(lines[1]).unwrap();
        assert_eq!(cmd.id, 2);
        assert_eq!(cmd.rpc.unwrap().method, "m");
    }

    #[test]
    fn subscribe_request_parses_recovery_fields() {
        let cmd = parse_command(
            br#"{"id":5,"subscribe":{"channel":"c","recover":true,"offset":10,"epoch":"ab","recoverable":true}}"#,
        )
        .unwrap();
        let sub = cmd.subscribe.unwrap();
        assert!(sub.recover && sub.recoverable);
        assert_eq!((sub.offset, sub.epoch.as_str()), (10, "ab"));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_command(b"{not json").is_err());
        assert!(parse_command(b"[1,2]").is_err());
        assert!(parse_command(b"{\"id\":\"x\"}").is_err());
    }
}
