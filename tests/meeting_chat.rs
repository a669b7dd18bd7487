//! Meeting chat end to end through the real binary, over the protocol directly (RPC on
//! the WebSocket, REST, channel subscriptions): every moderation rule — slow mode, bans,
//! timeouts, the word filter (block and hold), deletion, the rate limit, the length
//! limit, the audience — is enforced by the server whatever a page would do.

mod common;

use std::time::Duration;

use common::TestServer;
use common::ws::{WAIT, Ws};
use serde_json::{Value, json};
/// How long a test waits to be sure a push does not come.
const QUIET: Duration = Duration::from_millis(500);

/// A server, an admin (who moderates every meeting), a meeting for unit `xian-01`, and
/// two of its members.
struct Room {
    server: TestServer,
    admin: String,
    meeting: String,
    alice: String,
    bob: String,
}

impl Room {
    fn start(config: &str) -> Room {
        let server = TestServer::start(config);
        let admin = server.login_as("hq-admin", "admin", None);
        let (status, body) = server.rest(
            "POST",
            "/api/v1/meetings",
            Some(&admin),
            Some(json!({
                "title": "防汛调度会",
                "starts_at": common::unix_now() * 1000,
                "target": {"units": ["xian-01"]},
            })),
        );
        assert_eq!(status, 201, "schedule: {body}");
        let meeting = body["meeting"]["id"]
            .as_str()
            .expect("a meeting id")
            .to_owned();
        let alice = server.login_as("alice", "member", Some("xian-01"));
        let bob = server.login_as("bob", "member", Some("xian-01"));
        Room {
            server,
            admin,
            meeting,
            alice,
            bob,
        }
    }

    fn path(&self, tail: &str) -> String {
        format!("/api/v1/meetings/{}/chat{tail}", self.meeting)
    }

    /// `POST …/chat{tail}` as `token`.
    fn post(&self, token: &str, tail: &str, body: Value) -> (u16, Value) {
        self.server
            .rest("POST", &self.path(tail), Some(token), Some(body))
    }

    /// The account id behind `token`.
    fn account_id(&self, token: &str) -> String {
        let (status, me) = self.server.rest("GET", "/api/v1/me", Some(token), None);
        assert_eq!(status, 200, "{me}");
        me["account"]["id"]
            .as_str()
            .expect("an account id")
            .to_owned()
    }

    /// The texts `chat.history` lists now (over REST, as `token`).
    fn history(&self, token: &str) -> Vec<String> {
        let (status, body) = self.server.rest("GET", &self.path(""), Some(token), None);
        assert_eq!(status, 200, "{body}");
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Connects as `token` and subscribes to the chat channel (and, for a moderator, the
    /// moderators' channel) with the tokens `chat.history` hands out.
    async fn join(&self, token: &str) -> (Ws, Value) {
        let mut ws = Ws::connect(&self.server, token).await;
        let history = ws
            .rpc_with_message("chat.history", json!({"meeting": self.meeting}))
            .await
            .expect("chat.history");
        ws.subscribe(
            history["channel"].as_str().unwrap(),
            history["token"].as_str().unwrap(),
        )
        .await;
        if let Some(moderation) = history.get("moderation") {
            ws.subscribe(
                moderation["channel"].as_str().unwrap(),
                moderation["token"].as_str().unwrap(),
            )
            .await;
        }
        (ws, history)
    }

    fn channel(&self) -> String {
        format!("meeting-chat:{}", self.meeting)
    }

    fn moderators(&self) -> String {
        format!("meeting-chat:{}@moderators", self.meeting)
    }

    async fn say(&self, ws: &mut Ws, text: &str) -> Result<Value, (u64, String)> {
        ws.rpc_with_message("chat.post", json!({"meeting": self.meeting, "text": text}))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_mode_refuses_a_second_message_which_reaches_nobody() {
    let room = Room::start("");
    let (mut alice, _) = room.join(&room.alice).await;
    let (mut bob, _) = room.join(&room.bob).await;
    let (mut admin, _) = room.join(&room.admin).await;
    let channel = room.channel();

    let (status, body) = room.post(&room.admin, "/settings", json!({"slow_mode_seconds": 60}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["slow_mode_seconds"], 60);
    // Everyone hears the new setting (the page shows the countdown).
    let pushed = bob.next(&channel).await;
    assert_eq!(pushed["type"], "settings");
    assert_eq!(pushed["settings"]["slow_mode_seconds"], 60);

    let first = room.say(&mut alice, "第一条").await.expect("first message");
    assert_eq!(first["message"]["state"], "visible");
    let got = bob.next(&channel).await;
    assert_eq!(
        (got["type"].as_str(), got["message"]["text"].as_str()),
        (Some("message"), Some("第一条"))
    );
    assert_eq!(got["message"]["name"], "alice");
    assert_eq!(got["message"]["unit"], "xian-01");

    // The second inside the slow mode: 1429 over RPC, 429 with retry_after over REST.
    let (code, message) = room.say(&mut alice, "第二条").await.unwrap_err();
    assert_eq!(code, 1429, "{message}");
    assert!(message.contains("slow mode"), "{message}");
    let (status, body) = room.post(&room.alice, "/messages", json!({"text": "第二条"}));
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    let retry_after = body["error"]["retry_after"].as_u64().expect("retry_after");
    assert!((1..=60).contains(&retry_after), "{body}");

    // Moderators are exempt; the refused messages reached nobody: the next push anyone
    // gets is the moderator's.
    room.say(&mut admin, "请大家按顺序发言")
        .await
        .expect("moderator 1");
    room.say(&mut admin, "谢谢").await.expect("moderator 2");
    for ws in [&mut bob, &mut alice] {
        let mut texts = Vec::new();
        while let Some(push) = ws.next_on(&channel, QUIET).await {
            texts.push(push["message"]["text"].as_str().unwrap_or("?").to_owned());
        }
        assert!(!texts.iter().any(|t| t == "第二条"), "{texts:?}");
        assert!(
            texts.ends_with(&["请大家按顺序发言".into(), "谢谢".into()]),
            "{texts:?}"
        );
    }
    assert_eq!(
        room.history(&room.bob),
        ["第一条", "请大家按顺序发言", "谢谢"]
    );
    // Another member has their own clock.
    room.say(&mut bob, "我也说一句").await.expect("bob's first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_reaches_every_subscriber_live_and_leaves_the_history() {
    let room = Room::start("");
    let (mut alice, _) = room.join(&room.alice).await;
    let (mut bob, _) = room.join(&room.bob).await;
    let (mut admin, _) = room.join(&room.admin).await;
    let channel = room.channel();

    let posted = room.say(&mut alice, "说错了").await.unwrap();
    let id = posted["message"]["id"].as_i64().expect("a message id");
    room.say(&mut alice, "更正").await.unwrap();
    for ws in [&mut alice, &mut bob, &mut admin] {
        assert_eq!(ws.next(&channel).await["message"]["id"], id);
        ws.next(&channel).await;
    }
    // Only a moderator (or the author) deletes.
    let (code, _) = bob
        .rpc_with_message(
            "chat.delete",
            json!({"meeting": room.meeting, "message": id}),
        )
        .await
        .unwrap_err();
    assert_eq!(code, 1403);

    let deleted = admin
        .rpc_with_message(
            "chat.delete",
            json!({"meeting": room.meeting, "message": id}),
        )
        .await
        .expect("delete");
    assert_eq!(deleted["message"]["state"], "deleted");
    for ws in [&mut alice, &mut bob, &mut admin] {
        let push = ws.next(&channel).await;
        assert_eq!(push, json!({"type": "deleted", "id": id}));
    }
    let on_console = admin.next(&room.moderators()).await;
    assert_eq!(on_console["type"], "deleted");
    assert_eq!(on_console["id"], id);
    assert_eq!(room.history(&room.bob), ["更正"]);
    // Deleting twice is a conflict; an unknown message is 404.
    let (status, body) = room.post(&room.admin, "/delete", json!({"message": id}));
    assert_eq!(status, 409, "{body}");
    let (status, _) = room.post(&room.admin, "/delete", json!({"message": 987_654}));
    assert_eq!(status, 404);
    // The author may delete their own.
    let own = room.say(&mut bob, "撤回").await.unwrap()["message"]["id"].clone();
    let (status, body) = room.post(&room.bob, "/delete", json!({"message": own}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(room.history(&room.alice), ["更正"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_refuses_posts_until_lifted_and_a_timeout_expires() {
    let room = Room::start("");
    let (mut alice, _) = room.join(&room.alice).await;
    let (mut admin, _) = room.join(&room.admin).await;
    let alice_id = room.account_id(&room.alice);

    let banned = admin
        .rpc_with_message(
            "chat.ban",
            json!({"meeting": room.meeting, "account": alice_id, "reason": "刷屏"}),
        )
        .await
        .expect("ban");
    assert_eq!(banned["sanction"]["kind"], "ban");
    let push = admin.next(&room.moderators()).await;
    assert_eq!(push["type"], "sanction");
    assert_eq!(push["sanction"]["account"], alice_id.as_str());

    let (code, message) = room.say(&mut alice, "我被禁言了吗").await.unwrap_err();
    assert_eq!(code, 1403, "{message}");
    assert!(message.contains("banned"), "{message}");
    let (status, body) = room.post(&room.alice, "/messages", json!({"text": "REST"}));
    assert_eq!(status, 403, "{body}");
    // The member's own view says so; the moderators' view lists it.
    let (_, history) = room
        .server
        .rest("GET", &room.path(""), Some(&room.alice), None);
    assert_eq!(history["you"]["sanction"]["kind"], "ban");
    assert!(history.get("moderation").is_none(), "{history}");
    let (_, history) = room
        .server
        .rest("GET", &room.path(""), Some(&room.admin), None);
    assert_eq!(
        history["moderation"]["sanctions"][0]["account"],
        alice_id.as_str()
    );
    assert!(room.history(&room.admin).is_empty());

    // A moderator cannot be banned; a member cannot ban.
    let admin_id = room.account_id(&room.admin);
    let (status, body) = room.post(&room.admin, "/ban", json!({"account": admin_id}));
    assert_eq!(status, 409, "{body}");
    let (status, _) = room.post(&room.bob, "/ban", json!({"account": alice_id}));
    assert_eq!(status, 403);
    let (status, _) = room.post(&room.admin, "/ban", json!({"account": "nobody"}));
    assert_eq!(status, 404);

    let (status, body) = room.post(&room.admin, "/unban", json!({"account": alice_id}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lifted"], true);
    room.say(&mut alice, "恢复了")
        .await
        .expect("posting after the unban");

    // A timeout refuses until its end, then lets the member post again.
    let (status, body) = room.post(
        &room.admin,
        "/timeout",
        json!({"account": alice_id, "seconds": 3, "reason": "冷静一下"}),
    );
    assert_eq!(status, 200, "{body}");
    let (code, message) = room.say(&mut alice, "还在吗").await.unwrap_err();
    assert_eq!(code, 1403, "{message}");
    assert!(message.contains("timed out"), "{message}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match room.say(&mut alice, "超时结束").await {
            Ok(_) => break,
            Err((1403, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(other) => panic!("the timeout did not end: {other:?}"),
        }
    }
    assert_eq!(room.history(&room.bob), ["恢复了", "超时结束"]);
    // Bad sanctions are refused clearly.
    let (status, _) = room.post(&room.admin, "/timeout", json!({"account": alice_id}));
    assert_eq!(status, 422);
    let (status, _) = room.post(
        &room.admin,
        "/ban",
        json!({"account": alice_id, "seconds": 5}),
    );
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_words_and_long_messages_are_refused() {
    let room = Room::start(
        "[chat]\nfilter_words = [\"spam\", \"广告\"]\nfilter_mode = \"block\"\nmax_message_length = 20\n",
    );
    let (mut alice, _) = room.join(&room.alice).await;
    let (mut bob, _) = room.join(&room.bob).await;
    let channel = room.channel();

    let (code, message) = room.say(&mut alice, "Buy SPAM now").await.unwrap_err();
    assert_eq!(code, 1422, "{message}");
    assert!(message.contains("blocked word"), "{message}");
    let (status, body) = room.post(&room.alice, "/messages", json!({"text": "看广告"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unprocessable");
    // Too long: 21 characters; exactly 20 (Chinese characters count one each) passes.
    let (code, message) = room.say(&mut alice, &"长".repeat(21)).await.unwrap_err();
    assert_eq!(code, 1422, "{message}");
    assert!(message.contains("at most 20"), "{message}");
    let (status, _) = room.post(&room.alice, "/messages", json!({"text": "x".repeat(21)}));
    assert_eq!(status, 422);
    let (status, _) = room.post(&room.alice, "/messages", json!({"text": "   "}));
    assert_eq!(status, 422);
    room.say(&mut alice, &"好".repeat(20))
        .await
        .expect("20 characters");
    // Nothing refused reached bob: his first push is the accepted message.
    let push = bob.next(&channel).await;
    assert_eq!(push["message"]["text"], "好".repeat(20));
    assert!(bob.next_on(&channel, QUIET).await.is_none());
    assert_eq!(room.history(&room.bob), ["好".repeat(20)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_message_reaches_only_moderators_until_approved() {
    let room = Room::start("[chat]\nfilter_words = [\"spam\"]\nfilter_mode = \"hold\"\n");
    let (mut alice, _) = room.join(&room.alice).await;
    let (mut bob, _) = room.join(&room.bob).await;
    let (mut admin, joined) = room.join(&room.admin).await;
    assert_eq!(joined["moderation"]["channel"], room.moderators().as_str());
    let channel = room.channel();

    let held = room
        .say(&mut alice, "spam tastes good")
        .await
        .expect("held");
    assert_eq!(held["message"]["state"], "held");
    let id = held["message"]["id"].as_i64().unwrap();
    let review = admin.next(&room.moderators()).await;
    assert_eq!(review["type"], "held");
    assert_eq!(review["message"]["id"], id);
    assert_eq!(review["message"]["held_word"], "spam");
    let rejected = room.say(&mut alice, "more spam").await.unwrap()["message"]["id"].clone();
    admin.next(&room.moderators()).await;

    // Members see neither: the next push is an ordinary message.
    room.say(&mut alice, "hello").await.unwrap();
    for ws in [&mut alice, &mut bob, &mut admin] {
        assert_eq!(ws.next(&channel).await["message"]["text"], "hello");
    }
    assert_eq!(room.history(&room.bob), ["hello"]);
    // Members cannot see the queue nor open the moderators' channel.
    let (code, _) = bob
        .rpc_with_message("chat.held", json!({"meeting": room.meeting}))
        .await
        .unwrap_err();
    assert_eq!(code, 1403);
    let refused = bob
        .command("subscribe", json!({"channel": room.moderators()}))
        .await;
    assert!(refused.get("error").is_some(), "{refused}");
    let (status, queue) = room
        .server
        .rest("GET", &room.path("/held"), Some(&room.admin), None);
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue.as_array().unwrap().len(), 2, "{queue}");

    // Approved: it reaches everyone at once and joins the history.
    admin
        .rpc_with_message(
            "chat.approve",
            json!({"meeting": room.meeting, "message": id}),
        )
        .await
        .expect("approve");
    for ws in [&mut bob, &mut alice] {
        let push = ws.next(&channel).await;
        assert_eq!(push["type"], "message");
        assert_eq!(push["message"]["text"], "spam tastes good");
    }
    assert_eq!(admin.next(&room.moderators()).await["type"], "approved");
    // Rejected: never shown.
    let (status, body) = room.post(&room.admin, "/reject", json!({"message": rejected}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["state"], "rejected");
    let push = admin.next(&room.moderators()).await;
    assert_eq!(push, json!({"type": "rejected", "id": rejected}));
    assert!(bob.next_on(&channel, QUIET).await.is_none());
    // The history is in the order of posting: the approved message keeps its place.
    assert_eq!(room.history(&room.alice), ["spam tastes good", "hello"]);
    // Reviewed once.
    let (status, _) = room.post(&room.admin, "/approve", json!({"message": rejected}));
    assert_eq!(status, 409);
    // A moderator's own message is never held.
    let own = room.say(&mut admin, "no spam please").await.unwrap();
    assert_eq!(own["message"]["state"], "visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_rate_limit_is_refused_per_member() {
    let room = Room::start("[chat]\nrate_burst = 3\nrate_refill = \"1h\"\n");
    let (mut alice, _) = room.join(&room.alice).await;
    let (mut bob, _) = room.join(&room.bob).await;
    for i in 0..3 {
        room.say(&mut alice, &format!("第{i}条"))
            .await
            .unwrap_or_else(|e| panic!("message {i} of the burst: {e:?}"));
    }
    let (code, message) = room.say(&mut alice, "第4条").await.unwrap_err();
    assert_eq!(code, 1429, "{message}");
    assert!(message.contains("too many messages"), "{message}");
    let (status, body) = room.post(&room.alice, "/messages", json!({"text": "第4条"}));
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["retry_after"].as_u64().unwrap() > 3000,
        "{body}"
    );
    // Bob's bucket is his own.
    room.say(&mut bob, "轮到我").await.expect("bob");
    assert_eq!(
        room.history(&room.bob),
        ["第0条", "第1条", "第2条", "轮到我"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_unknown_meetings_and_closed_chats_are_refused() {
    let room = Room::start("");
    let outsider = room.server.login_as("carol", "member", Some("baoji"));
    let mut ws = Ws::connect(&room.server, &outsider).await;
    let (code, _) = ws
        .rpc_with_message("chat.history", json!({"meeting": room.meeting}))
        .await
        .unwrap_err();
    assert_eq!(code, 1403);
    let (code, _) = ws
        .rpc_with_message("chat.post", json!({"meeting": room.meeting, "text": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(code, 1403);
    let (status, _) = room.post(&outsider, "/messages", json!({"text": "hi"}));
    assert_eq!(status, 403);
    // Nobody subscribes without a token the service issued.
    let refused = ws
        .command("subscribe", json!({"channel": room.channel()}))
        .await;
    assert!(refused.get("error").is_some(), "{refused}");
    // Unknown meetings (and ids chat never uses) are 404.
    for meeting in ["m-nope", "a@moderators", ""] {
        let (code, _) = ws
            .rpc_with_message("chat.post", json!({"meeting": meeting, "text": "hi"}))
            .await
            .unwrap_err();
        assert_eq!(code, 1404, "{meeting:?}");
    }
    let (status, _) = room.server.rest(
        "POST",
        "/api/v1/meetings/m-nope/chat/messages",
        Some(&room.alice),
        Some(json!({"text": "hi"})),
    );
    assert_eq!(status, 404);
    // Anonymous: 401; bad bodies: 400.
    let (status, _) = room.server.rest(
        "POST",
        &room.path("/messages"),
        None,
        Some(json!({"text": "x"})),
    );
    assert_eq!(status, 401);
    let (status, body) = room.post(&room.alice, "/messages", json!({"body": "x"}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = room
        .server
        .rest("GET", &room.path("?limit=0"), Some(&room.alice), None);
    assert_eq!(status, 400, "{body}");

    // A moderator closes the chat: members are refused, moderators still speak.
    let mut alice = Ws::connect(&room.server, &room.alice).await;
    let (status, body) = room.post(&room.admin, "/settings", json!({"enabled": false}));
    assert_eq!(status, 200, "{body}");
    let (code, message) = room.say(&mut alice, "hi").await.unwrap_err();
    assert_eq!(code, 1403, "{message}");
    assert!(message.contains("closed"), "{message}");
    let (status, _) = room.post(&room.admin, "/messages", json!({"text": "会议结束"}));
    assert_eq!(status, 201);
    let (status, _) = room.post(&room.admin, "/settings", json!({"slow_mode_seconds": 3601}));
    assert_eq!(status, 422);
    let (status, _) = room.post(&room.alice, "/settings", json!({"enabled": true}));
    assert_eq!(status, 403);

    // After the meeting ended the chat is read-only, for moderators too.
    let (status, body) = room.server.rest(
        "POST",
        &format!("/api/v1/meetings/{}/end", room.meeting),
        Some(&room.admin),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = room.post(&room.admin, "/messages", json!({"text": "还有一句"}));
    assert_eq!(status, 409, "{body}");
    let (code, _) = room.say(&mut alice, "hi").await.unwrap_err();
    assert_eq!(code, 1409);
    let (status, history) = room
        .server
        .rest("GET", &room.path(""), Some(&room.alice), None);
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["open"], false);
    assert_eq!(room.history(&room.alice), ["会议结束"]);
}

/// `/api/openapi.json` lists exactly the chat routes, each routed (an anonymous call is
/// refused by the handler with 401, never 404 or 405 from the router).
#[test]
fn the_openapi_document_lists_the_chat_routes() {
    let server = TestServer::start("");
    let (status, doc) = server.rest("GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    let mut listed = Vec::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        if !path.contains("/chat") {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
            let concrete = path.replace("{id}", "m-some-meeting");
            let (status, body) =
                server.rest(&method.to_uppercase(), &concrete, None, Some(json!({})));
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}");
        }
    }
    listed.sort();
    let base = "/api/v1/meetings/{id}/chat";
    let mut expected: Vec<String> = [
        ("GET", ""),
        ("POST", "/messages"),
        ("POST", "/delete"),
        ("GET", "/held"),
        ("POST", "/approve"),
        ("POST", "/reject"),
        ("POST", "/timeout"),
        ("POST", "/ban"),
        ("POST", "/unban"),
        ("POST", "/settings"),
    ]
    .iter()
    .map(|(method, tail)| format!("{method} {base}{tail}"))
    .collect();
    expected.sort();
    assert_eq!(listed, expected);
    for schema in ["ChatMessage", "ChatSanction", "ChatSettings", "ChatHistory"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
}

/// Four members post 50 messages each at the same time (rate limit off): a subscriber gets
/// every message exactly once, each member's in the order posted, and the history lists
/// them all in id order. Prints the post round trip and delivery latency percentiles
/// (figures, not assertions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_all_arrive_once_in_each_members_order() {
    const MEMBERS: usize = 4;
    const EACH: usize = 50;
    let room = Room::start("[chat]\nrate_refill = \"0\"\n");
    let (mut watcher, _) = room.join(&room.bob).await;
    let channel = room.channel();
    let mut sockets = Vec::new();
    for member in 0..MEMBERS {
        let token = room
            .server
            .login_as(&format!("poster-{member}"), "member", Some("xian-01"));
        sockets.push(Ws::connect(&room.server, &token).await);
    }
    let started = std::time::Instant::now();
    let mut posters = Vec::new();
    for (member, mut ws) in sockets.into_iter().enumerate() {
        let meeting = room.meeting.clone();
        posters.push(tokio::spawn(async move {
            let mut round_trips = Vec::new();
            for i in 0..EACH {
                let sent = std::time::Instant::now();
                ws.rpc_with_message(
                    "chat.post",
                    json!({"meeting": meeting, "text": format!("{member}:{i}")}),
                )
                .await
                .unwrap_or_else(|e| panic!("post {member}:{i}: {e:?}"));
                round_trips.push(sent.elapsed());
            }
            round_trips
        }));
    }
    let mut received: Vec<(String, Duration)> = Vec::new();
    while received.len() < MEMBERS * EACH {
        let push = watcher.next(&channel).await;
        let text = push["message"]["text"].as_str().expect("a text").to_owned();
        received.push((text, started.elapsed()));
    }
    let mut round_trips = Vec::new();
    for poster in posters {
        round_trips.extend(poster.await.expect("a poster"));
    }
    assert!(
        watcher.next_on(&channel, QUIET).await.is_none(),
        "no extra push"
    );
    for member in 0..MEMBERS {
        let mine: Vec<String> = received
            .iter()
            .map(|(text, _)| text.clone())
            .filter(|text| text.starts_with(&format!("{member}:")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{member}:{i}")).collect();
        assert_eq!(
            mine, expected,
            "member {member}'s messages, once each, in order"
        );
    }
    let (status, history) =
        room.server
            .rest("GET", &room.path("?limit=200"), Some(&room.bob), None);
    assert_eq!(status, 200);
    let ids: Vec<i64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), MEMBERS * EACH);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));

    round_trips.sort();
    let percentile = |sorted: &[Duration], p: usize| sorted[(sorted.len() - 1) * p / 100];
    let total = received.last().map(|(_, at)| *at).unwrap_or_default();
    println!(
        "chat.post round trip over {} posts from {MEMBERS} members: p50 {:?}, p95 {:?}, \
         p99 {:?}; all delivered to a subscriber in {total:?} ({:.0} messages/s)",
        round_trips.len(),
        percentile(&round_trips, 50),
        percentile(&round_trips, 95),
        percentile(&round_trips, 99),
        received.len() as f64 / total.as_secs_f64()
    );
}
