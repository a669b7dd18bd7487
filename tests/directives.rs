//! Directives end to end through the real binary: accounts made with `rootcast
//! account`, logins over REST, units connected over the WebSocket with the token their
//! login returned, the moderator's dashboard channel — and every scope rule checked over
//! REST, RPC and channel subscription.

mod common;

use std::time::Duration;

use common::TestServer;
use common::ws::{SubscribeOutcome, WAIT, Ws};
use serde_json::{Value, json};

/// The demo organisation's units as an admin sees them.
fn units(server: &TestServer, admin: &str) -> Vec<Value> {
    let (status, body) = server.rest("GET", "/api/v1/org/units", Some(admin), None);
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a list").clone()
}

/// Stations (grassroots units under a county) under `ancestor` (by path).
fn stations_under(units: &[Value], ancestor: &str) -> Vec<String> {
    units
        .iter()
        .filter(|u| {
            u["kind"] == "station"
                && u["path"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("/{ancestor}/"))
        })
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The county of a unit (its parent).
fn parent_of(units: &[Value], id: &str) -> String {
    units
        .iter()
        .find(|u| u["id"] == id)
        .and_then(|u| u["parent"].as_str())
        .expect("a parent")
        .to_owned()
}

fn send(server: &TestServer, token: &str, target: Value) -> (u16, Value) {
    server.rest(
        "POST",
        "/api/v1/directives",
        Some(token),
        Some(json!({
            "title": "防汛值班安排",
            "body": "请各单位**今晚**落实值班。",
            "priority": "urgent",
            "target": target,
            "ack_required": true,
            "deadline": null,
        })),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_units_get_the_directive_at_once_and_offline_units_catch_up_in_order() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let xian = stations_under(&all, "xian");
    let online_unit = xian[0].clone();
    let county = parent_of(&all, &online_unit);
    let offline_unit = stations_under(&all, &county)
        .into_iter()
        .find(|u| *u != online_unit)
        .expect("a second unit in the county");
    let outside_unit = stations_under(&all, "baoji")[0].clone();

    let online_token = server.login_as("officer-online", "officer", Some(&online_unit));
    let mut online = Ws::connect(&server, &online_token).await;
    let connect = online.connected.clone();
    let channel = format!("unit:{online_unit}");
    assert!(
        connect["subs"].get(&channel).is_some(),
        "the login token subscribes to the unit's channel: {connect}"
    );

    // Two directives to the county, one after the other.
    let (status, first) = send(&server, &admin, json!({"subtrees": [county]}));
    assert_eq!(status, 201, "{first}");
    let (status, second) = send(&server, &admin, json!({"subtrees": [county]}));
    assert_eq!(status, 201, "{second}");
    let targeted = first["targeted"].as_u64().unwrap();
    assert_eq!(
        targeted as usize,
        all.iter()
            .filter(|u| u["path"].as_str().unwrap().contains(&format!("/{county}/")))
            .count(),
        "the county and each unit under it"
    );

    // The online unit gets both pushes, in order, with consecutive seqs.
    let push1 = online.next_on(&channel, WAIT).await.expect("first push");
    let push2 = online.next_on(&channel, WAIT).await.expect("second push");
    assert_eq!(push1["type"], "entry");
    assert_eq!(push1["entry"]["directive"]["id"], first["directive"]["id"]);
    assert_eq!(push2["entry"]["directive"]["id"], second["directive"]["id"]);
    assert_eq!(push1["entry"]["seq"], 1);
    assert_eq!(push2["entry"]["seq"], 2);
    assert_eq!(push1["entry"]["state"]["stage"], "pending");

    // The offline unit connects afterwards and catches up: both, in order, once.
    let offline_token = server.login_as("officer-offline", "officer", Some(&offline_unit));
    let mut offline = Ws::connect(&server, &offline_token).await;
    let inbox = offline
        .rpc("inbox.list", json!({"after": 0}))
        .await
        .unwrap();
    let ids: Vec<&Value> = inbox["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["directive"]["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&first["directive"]["id"], &second["directive"]["id"]]
    );
    assert_eq!(inbox["head"], 2);
    // Catching up after the first returns only the second.
    let rest = offline
        .rpc("inbox.list", json!({"after": 1}))
        .await
        .unwrap();
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
    assert_eq!(rest["entries"][0]["seq"], 2);

    // A unit outside the target has nothing.
    let (status, outside) = server.rest(
        "GET",
        &format!("/api/v1/inbox?unit={outside_unit}"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{outside}");
    assert_eq!(outside["entries"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_reaches_the_moderators_map_live() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let unit = stations_under(&all, "xian")[0].clone();
    let moderator = server.login_as("xian-moderator", "moderator", Some("xian"));
    let officer = server.login_as("xian-officer", "officer", Some(&unit));

    let (status, sent) = send(&server, &moderator, json!({"subtrees": ["xian"]}));
    assert_eq!(status, 201, "{sent}");
    let directive = sent["directive"]["id"].as_str().unwrap().to_owned();

    // The moderator's map: everything pending, and a channel to watch.
    let (status, map) = server.rest(
        "GET",
        &format!("/api/v1/directives/{directive}/dashboard"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["root"]["id"], "xian");
    assert_eq!(map["total"]["acknowledged"], 0);
    let targeted = map["total"]["targeted"].as_u64().unwrap();
    assert_eq!(targeted, sent["targeted"].as_u64().unwrap());
    assert_eq!(
        map["not_acknowledged"].as_array().unwrap().len() as u64,
        targeted
    );
    let channel = map["channel"].as_str().unwrap().to_owned();
    let mut watcher = Ws::connect(&server, &moderator).await;
    let reply = watcher
        .command(
            "subscribe",
            json!({"channel": channel, "token": map["channel_token"]}),
        )
        .await;
    assert!(
        reply.get("error").is_none(),
        "subscribe with the map's token: {reply}"
    );

    // The officer acknowledges over RPC; the map hears it.
    let mut unit_ws = Ws::connect(&server, &officer).await;
    let acked = unit_ws
        .rpc("directive.ack", json!({"directive": directive}))
        .await
        .expect("the officer may acknowledge");
    assert_eq!(acked["state"]["stage"], "acknowledged");
    let push = watcher
        .next_on(&channel, WAIT)
        .await
        .expect("the map hears the acknowledgement");
    assert_eq!(push["type"], "state");
    assert_eq!(push["state"]["unit_id"], unit.as_str());
    assert_eq!(push["state"]["stage"], "acknowledged");
    assert!(push["state"]["acked_by"].as_str().is_some());

    // Acknowledging again changes nothing and pushes nothing.
    let again = unit_ws
        .rpc("directive.ack", json!({"directive": directive}))
        .await
        .unwrap();
    assert_eq!(again["state"]["acked_at"], acked["state"]["acked_at"]);
    assert!(
        watcher
            .next_on(&channel, Duration::from_millis(500))
            .await
            .is_none(),
        "an idempotent acknowledgement is not announced twice"
    );

    let (_, map) = server.rest(
        "GET",
        &format!("/api/v1/directives/{directive}/dashboard"),
        Some(&moderator),
        None,
    );
    assert_eq!(map["total"]["acknowledged"], 1);
    assert_eq!(map["total"]["delivered"], 1);
    assert!(map["total"]["median_ack_ms"].as_i64().is_some());
    assert!(
        !map["not_acknowledged"]
            .as_array()
            .unwrap()
            .contains(&json!(unit)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_moderator_stays_inside_the_city_and_officers_inside_their_unit() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let xian_units = stations_under(&all, "xian");
    let baoji_unit = stations_under(&all, "baoji")[0].clone();
    let moderator = server.login_as("xian-moderator", "moderator", Some("xian"));
    let officer = server.login_as("xian-officer", "officer", Some(&xian_units[0]));
    let member = server.login_as("xian-member", "member", Some(&xian_units[0]));

    // Addressing: outside the city is refused, and nothing is written.
    let (status, body) = send(&server, &moderator, json!({"subtrees": ["baoji"]}));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = send(
        &server,
        &moderator,
        json!({"units": [xian_units[0], baoji_unit]}),
    );
    assert_eq!(status, 403, "one unit outside is enough: {body}");
    let (_, listed) = server.rest("GET", "/api/v1/directives", Some(&admin), None);
    assert_eq!(listed, json!([]), "a refused send writes nothing");

    // Officers and members do not send.
    let (status, _) = send(&server, &officer, json!({"subtrees": ["xian"]}));
    assert_eq!(status, 403);

    // Seeing: the moderator's units are the city's; no map or inbox outside.
    let (_, visible) = server.rest("GET", "/api/v1/org/units", Some(&moderator), None);
    let visible = visible.as_array().unwrap();
    assert!(
        visible
            .iter()
            .all(|u| u["path"].as_str().unwrap().contains("/xian/"))
    );
    assert_eq!(
        visible.len(),
        1 + all
            .iter()
            .filter(|u| u["path"].as_str().unwrap().contains("/xian/") && u["id"] != "xian")
            .count()
    );
    let (status, sent) = send(&server, &admin, json!({"subtrees": ["sx"]}));
    assert_eq!(status, 201, "{sent}");
    let directive = sent["directive"]["id"].as_str().unwrap().to_owned();
    let (status, _) = server.rest(
        "GET",
        &format!("/api/v1/directives/{directive}/dashboard?root=baoji"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 403);
    let (status, map) = server.rest(
        "GET",
        &format!("/api/v1/directives/{directive}/dashboard"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200);
    assert!(
        map["units"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["path"].as_str().unwrap().contains("/xian/")),
        "the moderator's map holds only the city's units"
    );
    let (status, _) = server.rest(
        "GET",
        &format!("/api/v1/inbox?unit={baoji_unit}"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 403);

    // Channels: the map of another city cannot be subscribed without its token, and the
    // moderator's token for Xi'an does not open Baoji's.
    let mut ws = Ws::connect(&server, &moderator).await;
    let reply = ws
        .command(
            "subscribe",
            json!({"channel": format!("ack:{directive}@baoji")}),
        )
        .await;
    assert_eq!(reply["error"]["code"], 103, "{reply}");
    let reply = ws
        .command(
            "subscribe",
            json!({"channel": format!("unit:{baoji_unit}")}),
        )
        .await;
    assert_eq!(reply["error"]["code"], 103, "{reply}");

    // RPC: the same rules, as error code 1000 + status.
    assert_eq!(
        ws.rpc(
            "directive.dashboard",
            json!({"directive": directive, "root": "baoji"})
        )
        .await,
        Err(1403)
    );

    // Acknowledging: only an officer of the unit.
    let mut officer_ws = Ws::connect(&server, &officer).await;
    assert_eq!(
        officer_ws
            .rpc(
                "directive.ack",
                json!({"directive": directive, "unit": xian_units[1]})
            )
            .await,
        Err(1403),
        "an officer cannot acknowledge for another unit"
    );
    let mut member_ws = Ws::connect(&server, &member).await;
    assert_eq!(
        member_ws
            .rpc("directive.ack", json!({"directive": directive}))
            .await,
        Err(1403),
        "a member cannot acknowledge"
    );
    assert_eq!(
        ws.rpc(
            "directive.ack",
            json!({"directive": directive, "unit": xian_units[0]})
        )
        .await,
        Err(1403),
        "nor can a moderator"
    );
    assert!(
        officer_ws
            .rpc("directive.ack", json!({"directive": directive}))
            .await
            .is_ok()
    );

    // The map's token for Xi'an does not open Baoji's: as for any subscription token
    // that does not match its channel, the hub closes the connection (3500).
    let mut ws = Ws::connect(&server, &moderator).await;
    let outcome = ws
        .try_subscribe(json!({
            "channel": format!("ack:{directive}@baoji"),
            "token": map["channel_token"],
        }))
        .await;
    assert_eq!(outcome, SubscribeOutcome::Closed(Some(3500)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);

    let (status, body) = server.rest("GET", "/api/v1/me", None, None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = server.rest("GET", "/api/v1/me", Some("not-a-token"), None);
    assert_eq!(status, 401);
    let (status, body) = server.rest(
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": "hq-admin", "password": "wrong"})),
    );
    assert_eq!(status, 401, "{body}");
    let (status, unknown_user) = server.rest(
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": "nobody", "password": "wrong-password"})),
    );
    assert_eq!(status, 401);
    assert_eq!(
        unknown_user, body,
        "login does not tell which part was wrong"
    );

    let (status, body) = server.rest(
        "POST",
        "/api/v1/directives",
        Some(&admin),
        Some(json!({"title": "x", "target": {"subtrees": ["sx"]}, "colour": "red"})),
    );
    assert_eq!(status, 400, "unknown field: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let (status, body) = send(&server, &admin, json!({"subtrees": ["no-such-unit"]}));
    assert_eq!(status, 422, "{body}");
    let (status, body) = send(&server, &admin, json!({}));
    assert_eq!(status, 422, "empty target: {body}");
    let (status, body) = server.rest(
        "POST",
        "/api/v1/directives",
        Some(&admin),
        Some(json!({"title": " ", "target": {"subtrees": ["sx"]}})),
    );
    assert_eq!(status, 422, "empty title: {body}");
    let (status, body) = server.rest(
        "GET",
        "/api/v1/directives/no-such-directive/dashboard",
        Some(&admin),
        None,
    );
    assert_eq!(status, 404, "{body}");

    // The server is still fine.
    let (status, me) = server.rest("GET", "/api/v1/me", Some(&admin), None);
    assert_eq!(status, 200);
    assert_eq!(me["account"]["role"], "admin");
}

/// `/api/openapi.json` describes the routes that exist: each operation it lists is
/// routed (an anonymous call is refused by the handler with 400 or 401, never 404 or
/// 405 from the router).
#[test]
fn the_openapi_document_lists_routes_that_exist() {
    let server = TestServer::start("");
    let (status, doc) = server.rest("GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "{} paths", paths.len());
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "some-directive");
            let (status, body) =
                server.rest(&method.to_uppercase(), &concrete, None, Some(json!({})));
            assert!(
                status == 400 || status == 401,
                "{method} {path}: {status} {body}"
            );
            assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_units_are_reminded_then_their_parent_and_grandparent_are_told() {
    let server = TestServer::start(
        "[directives]\nreminder_interval = \"1s\"\nmax_reminders = 2\n\
         escalate_to_parent_after = \"2s\"\nescalate_to_grandparent_after = \"3s\"\n\
         check_interval = \"100ms\"\n",
    );
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let silent = stations_under(&all, "xian")[0].clone();
    let county = parent_of(&all, &silent);
    let city = parent_of(&all, &county);
    assert_eq!(city, "xian");
    let acked = stations_under(&all, &county)
        .into_iter()
        .find(|u| *u != silent)
        .expect("a second unit in the county");

    let mut silent_ws = Ws::connect(
        &server,
        &server.login_as("silent", "officer", Some(&silent)),
    )
    .await;
    let mut acked_ws =
        Ws::connect(&server, &server.login_as("prompt", "officer", Some(&acked))).await;
    let mut county_ws = Ws::connect(
        &server,
        &server.login_as("county", "officer", Some(&county)),
    )
    .await;
    let mut city_ws = Ws::connect(&server, &server.login_as("city", "officer", Some(&city))).await;

    let (status, sent) = send(&server, &admin, json!({"units": [silent, acked]}));
    assert_eq!(status, 201, "{sent}");
    let directive = sent["directive"]["id"].clone();
    // One unit acknowledges at once; it must hear no reminder.
    acked_ws
        .rpc("directive.ack", json!({"directive": directive}))
        .await
        .unwrap();

    let silent_channel = format!("unit:{silent}");
    let mut reminders = Vec::new();
    while let Some(push) = silent_ws
        .next_on(&silent_channel, Duration::from_secs(4))
        .await
    {
        if push["type"] == "reminder" {
            assert_eq!(push["directive"]["id"], directive);
            reminders.push(push["number"].as_i64().unwrap());
        }
        if reminders.len() == 2 {
            break;
        }
    }
    assert_eq!(
        reminders,
        vec![1, 2],
        "one reminder per interval, up to the cap"
    );

    let escalation = |push: &Value, level: i64| {
        assert_eq!(push["type"], "escalation", "{push}");
        assert_eq!(push["level"], level);
        assert_eq!(push["unit"]["id"], silent.as_str());
        assert_eq!(push["directive"]["id"], directive);
    };
    let parent = next_of_type(&mut county_ws, &format!("unit:{county}"), "escalation").await;
    escalation(&parent, 1);
    let grandparent = next_of_type(&mut city_ws, &format!("unit:{city}"), "escalation").await;
    escalation(&grandparent, 2);

    // Nothing more: the cap is reached, each escalation happens once, and the unit that
    // acknowledged heard nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (ws, channel) in [
        (&mut silent_ws, silent_channel.clone()),
        (&mut county_ws, format!("unit:{county}")),
        (&mut city_ws, format!("unit:{city}")),
        (&mut acked_ws, format!("unit:{acked}")),
    ] {
        while let Some(push) = ws.next_on(&channel, Duration::from_millis(200)).await {
            assert!(
                push["type"] != "reminder" && push["type"] != "escalation",
                "unexpected on {channel}: {push}"
            );
        }
    }
}

/// The next publication of `kind` on `channel`, skipping others (inbox entries, states).
async fn next_of_type(ws: &mut Ws, channel: &str, kind: &str) -> Value {
    loop {
        let push = ws
            .next_on(channel, Duration::from_secs(6))
            .await
            .unwrap_or_else(|| panic!("no {kind} on {channel} in time"));
        if push["type"] == kind {
            return push;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_directive_is_sent_at_its_time_and_a_cancelled_one_never() {
    let server = TestServer::start("[directives]\ncheck_interval = \"100ms\"\n");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let unit = stations_under(&all, "xian")[0].clone();
    let moderator = server.login_as("xian-moderator", "moderator", Some("xian"));
    let other_moderator = server.login_as("other-moderator", "moderator", Some("xian"));
    let mut unit_ws =
        Ws::connect(&server, &server.login_as("officer", "officer", Some(&unit))).await;
    let channel = format!("unit:{unit}");

    let schedule = |title: &str, in_ms: u64| {
        server.rest(
            "POST",
            "/api/v1/directives",
            Some(&moderator),
            Some(json!({
                "title": title,
                "target": {"units": [unit]},
                "send_at": now_ms() + in_ms,
            })),
        )
    };
    let (status, kept) = schedule("later", 3000);
    assert_eq!(status, 202, "{kept}");
    let kept_id = kept["scheduled"]["id"].clone();
    let (status, cancelled) = schedule("cancelled", 3000);
    assert_eq!(status, 202, "{cancelled}");
    let cancelled_id = cancelled["scheduled"]["id"].as_str().unwrap().to_owned();

    // Scope of cancelling: the author or an admin.
    let (status, _) = server.rest(
        "DELETE",
        &format!("/api/v1/directives/scheduled/{cancelled_id}"),
        Some(&other_moderator),
        None,
    );
    assert_eq!(status, 403);
    let (status, body) = server.rest(
        "DELETE",
        &format!("/api/v1/directives/scheduled/{cancelled_id}"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.rest(
        "DELETE",
        &format!("/api/v1/directives/scheduled/{cancelled_id}"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 404, "cancelled already");
    let (_, pending) = server.rest(
        "GET",
        "/api/v1/directives/scheduled",
        Some(&moderator),
        None,
    );
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["id"], kept_id);

    // Nothing arrives before the time; the kept one arrives after it.
    let early = unit_ws.next_on(&channel, Duration::from_millis(500)).await;
    assert!(early.is_none(), "nothing before its time: {early:?}");
    let push = unit_ws
        .next_on(&channel, WAIT)
        .await
        .expect("the scheduled directive arrives");
    assert_eq!(push["entry"]["directive"]["id"], kept_id);
    assert_eq!(push["entry"]["seq"], 1);
    assert!(
        unit_ws
            .next_on(&channel, Duration::from_millis(800))
            .await
            .is_none(),
        "the cancelled one never comes"
    );
    let (_, pending) = server.rest("GET", "/api/v1/directives/scheduled", Some(&admin), None);
    assert_eq!(pending, json!([]));
    let (_, inbox) = server.rest(
        "GET",
        &format!("/api/v1/inbox?unit={unit}"),
        Some(&admin),
        None,
    );
    assert_eq!(inbox["entries"].as_array().unwrap().len(), 1);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_room_screen_logs_in_with_its_credential_until_it_is_revoked() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let unit = stations_under(&all, "xian")[0].clone();
    let printed = server.account(&["credential", "--unit", &unit, "--label", "room 1"]);
    let credential = printed
        .split_whitespace()
        .find(|word| word.starts_with("rcu_"))
        .expect("the credential is printed")
        .to_owned();
    assert!(
        printed.contains(&format!("/inbox?credential={credential}")),
        "{printed}"
    );
    assert!(
        printed.lines().filter(|l| l.contains('█')).count() > 10,
        "the join link is printed as a QR code: {printed}"
    );

    let (status, session) = server.rest(
        "POST",
        "/api/v1/login/credential",
        None,
        Some(json!({"credential": credential})),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["account"]["role"], "member");
    assert_eq!(session["account"]["unit"], unit.as_str());
    let screen = session["token"].as_str().unwrap().to_owned();

    let (status, sent) = send(&server, &admin, json!({"units": [unit]}));
    assert_eq!(status, 201, "{sent}");
    let directive = sent["directive"]["id"].clone();
    let mut ws = Ws::connect(&server, &screen).await;
    let connect = ws.connected.clone();
    assert!(connect["subs"].get(format!("unit:{unit}")).is_some());
    let inbox = ws.rpc("inbox.list", json!({})).await.unwrap();
    assert_eq!(inbox["entries"][0]["directive"]["id"], directive);
    // A screen confirms delivery and reading, but never acknowledges.
    let receipt = ws
        .rpc("directive.receipt", json!({"directive": directive}))
        .await
        .unwrap();
    assert_eq!(receipt["state"]["stage"], "delivered");
    let read = ws
        .rpc("directive.read", json!({"directive": directive}))
        .await
        .unwrap();
    assert_eq!(read["state"]["stage"], "read");
    assert_eq!(
        ws.rpc("directive.ack", json!({"directive": directive}))
            .await,
        Err(1403)
    );

    // A tampered credential and, after revocation, the real one are refused; so is the
    // token it was given.
    let mut tampered = credential.clone();
    tampered.pop();
    tampered.push(if credential.ends_with('a') { 'b' } else { 'a' });
    let (status, _) = server.rest(
        "POST",
        "/api/v1/login/credential",
        None,
        Some(json!({"credential": tampered})),
    );
    assert_eq!(status, 401);
    let id = credential
        .strip_prefix("rcu_")
        .and_then(|rest| rest.split('_').next())
        .unwrap();
    server.account(&["revoke", id]);
    let (status, _) = server.rest(
        "POST",
        "/api/v1/login/credential",
        None,
        Some(json!({"credential": credential})),
    );
    assert_eq!(status, 401);
    let (status, _) = server.rest("GET", "/api/v1/me", Some(&screen), None);
    assert_eq!(status, 401, "the revoked screen's token no longer works");
    // Its open WebSocket is cut off by the next revocation sweep (every 5 s), and the
    // token, still unexpired, no longer connects.
    assert_eq!(ws.closed(REVOKED_WITHIN).await, Some(3508));
    assert_eq!(Ws::refused_connect(&server, &screen).await, Some(3508));
}

/// The server reads revoked accounts and credentials every 5 s; a sweep can be late.
const REVOKED_WITHIN: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_loses_its_open_connection_and_cannot_reconnect() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let unit = stations_under(&all, "xian")[0].clone();
    let officer = server.login_as("officer-one", "officer", Some(&unit));
    let colleague = server.login_as("officer-two", "officer", Some(&unit));
    let mut leaving = Ws::connect(&server, &officer).await;
    let mut staying = Ws::connect(&server, &colleague).await;

    server.account(&["disable", "officer-one"]);
    assert_eq!(leaving.closed(REVOKED_WITHIN).await, Some(3508));
    assert_eq!(Ws::refused_connect(&server, &officer).await, Some(3508));
    // The other officer of the same unit keeps receiving the unit's directives.
    let (status, sent) = send(&server, &admin, json!({"units": [unit]}));
    assert_eq!(status, 201, "{sent}");
    let pushed = staying.next_of(&format!("unit:{unit}"), "entry").await;
    assert_eq!(pushed["entry"]["directive"]["id"], sent["directive"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_and_retractions_reach_online_and_offline_units_in_order() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let stations = stations_under(&all, "xian");
    let (online_unit, offline_unit) = (stations[0].clone(), stations[1].clone());
    let moderator = server.login_as("xian-moderator", "moderator", Some("xian"));
    let outsider = server.login_as("baoji-moderator", "moderator", Some("baoji"));
    let mut online = Ws::connect(
        &server,
        &server.login_as("online", "officer", Some(&online_unit)),
    )
    .await;
    let channel = format!("unit:{online_unit}");

    let (status, sent) = send(
        &server,
        &moderator,
        json!({"units": [online_unit, offline_unit]}),
    );
    assert_eq!(status, 201, "{sent}");
    let id = sent["directive"]["id"].as_str().unwrap().to_owned();
    next_of_type(&mut online, &channel, "entry").await;
    let acked = online
        .rpc("directive.ack", json!({"directive": id, "version": 1}))
        .await
        .unwrap();
    assert_eq!(acked["state"]["stage"], "acknowledged");

    // A moderator of another city may not correct it; its sender may.
    let correction = json!({
        "title": "防汛值班安排（更正）",
        "body": "请各单位**今晚和明晚**落实值班。",
        "priority": "urgent",
        "ack_required": true,
        "note": "值班延长一天",
    });
    let path = format!("/api/v1/directives/{id}/correct");
    let (status, _) = server.rest("POST", &path, Some(&outsider), Some(correction.clone()));
    assert_eq!(status, 403);
    let (status, corrected) = server.rest("POST", &path, Some(&moderator), Some(correction));
    assert_eq!(status, 200, "{corrected}");
    assert_eq!(corrected["directive"]["version"], 2);

    // The online unit hears the correction and must acknowledge again.
    let push = next_of_type(&mut online, &channel, "entry").await;
    assert_eq!(push["entry"]["kind"], "corrected");
    assert_eq!(push["entry"]["directive"]["version"], 2);
    assert_eq!(push["entry"]["state"]["stage"], "pending");
    assert_eq!(
        online
            .rpc("directive.ack", json!({"directive": id, "version": 1}))
            .await,
        Err(1409),
        "acknowledging the old version is refused"
    );
    let reacked = online
        .rpc("directive.ack", json!({"directive": id, "version": 2}))
        .await
        .unwrap();
    assert_eq!(reacked["state"]["version"], 2);
    assert_eq!(reacked["state"]["stage"], "acknowledged");

    // The versions, with what changed.
    let (status, versions) = server.rest(
        "GET",
        &format!("/api/v1/directives/{id}/versions"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200, "{versions}");
    let list = versions["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let changed: Vec<&str> = list[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(changed, vec!["title", "body"]);
    assert_eq!(list[1]["note"], "值班延长一天");

    // Retraction: the unit hears it and no acknowledgement is taken any more.
    let (status, _) = server.rest(
        "POST",
        &format!("/api/v1/directives/{id}/retract"),
        Some(&moderator),
        Some(json!({"note": "已取消"})),
    );
    assert_eq!(status, 200);
    let push = next_of_type(&mut online, &channel, "entry").await;
    assert_eq!(push["entry"]["kind"], "retracted");

    // The unit that was offline catches up with all three, in order.
    let mut offline = Ws::connect(
        &server,
        &server.login_as("offline", "officer", Some(&offline_unit)),
    )
    .await;
    let inbox = offline
        .rpc("inbox.list", json!({"after": 0}))
        .await
        .unwrap();
    let kinds: Vec<(&str, i64)> = inbox["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["seq"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("sent", 1), ("corrected", 2), ("retracted", 3)]);
    assert_eq!(
        offline.rpc("directive.ack", json!({"directive": id})).await,
        Err(1409),
        "a retracted directive takes no acknowledgement"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_reaches_the_parent_and_headquarters_at_once_and_is_answered_in_its_thread() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let stations = stations_under(&all, "xian");
    let unit = stations[0].clone();
    let county = parent_of(&all, &unit);
    let neighbour = stations_under(&all, &county)
        .into_iter()
        .find(|u| *u != unit)
        .unwrap();
    let officer = server.login_as("officer", "officer", Some(&unit));
    let mut county_ws = Ws::connect(
        &server,
        &server.login_as("county-officer", "officer", Some(&county)),
    )
    .await;
    let county_officer = server.login_as("county-officer-2", "officer", Some(&county));
    let mut hq_ws = Ws::connect(
        &server,
        &server.login_as("hq-officer", "officer", Some("sx")),
    )
    .await;
    let neighbour_officer = server.login_as("neighbour", "officer", Some(&neighbour));
    let xian_moderator = server.login_as("xian-moderator", "moderator", Some("xian"));
    let baoji_moderator = server.login_as("baoji-moderator", "moderator", Some("baoji"));

    let (status, sent) = send(&server, &admin, json!({"units": [unit]}));
    assert_eq!(status, 201);
    let directive = sent["directive"]["id"].as_str().unwrap().to_owned();

    // A unit may not write for another unit.
    let (status, _) = server.rest(
        "POST",
        "/api/v1/feedback",
        Some(&neighbour_officer),
        Some(json!({"unit": unit, "kind": "problem", "subject": "x", "body": "y"})),
    );
    assert_eq!(status, 403);

    let (status, opened) = server.rest(
        "POST",
        "/api/v1/feedback",
        Some(&officer),
        Some(json!({
            "directive": directive,
            "kind": "problem",
            "subject": "值班人员不足",
            "body": "本站今晚只有一人，请协调。",
        })),
    );
    assert_eq!(status, 201, "{opened}");
    let thread = opened["thread"]["id"].as_str().unwrap().to_owned();
    assert_eq!(opened["thread"]["status"], "open");

    // The parent and headquarters hear it at once, not one after the other's relay.
    for (ws, channel) in [
        (&mut county_ws, format!("unit:{county}")),
        (&mut hq_ws, "unit:sx".to_owned()),
    ] {
        let push = next_of_type(ws, &channel, "feedback").await;
        assert_eq!(push["event"], "opened");
        assert_eq!(push["thread"]["id"], thread.as_str());
        assert_eq!(push["message"]["body"], "本站今晚只有一人，请协调。");
    }

    // Who sees it.
    let listed = |token: &str| {
        let (status, list) = server.rest("GET", "/api/v1/feedback", Some(token), None);
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == thread.as_str())
    };
    assert!(listed(&xian_moderator));
    assert!(listed(&county_officer));
    assert!(listed(&admin));
    assert!(!listed(&baoji_moderator));
    assert!(!listed(&neighbour_officer));
    let (status, _) = server.rest(
        "GET",
        &format!("/api/v1/feedback/{thread}"),
        Some(&baoji_moderator),
        None,
    );
    assert_eq!(status, 404);

    // The parent answers; the unit writes again; the unit closes it.
    let post = |token: &str, body: &str| {
        server.rest(
            "POST",
            &format!("/api/v1/feedback/{thread}/messages"),
            Some(token),
            Some(json!({"body": body})),
        )
    };
    let (status, answered) = post(&county_officer, "已安排邻近驿站支援。");
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["thread"]["status"], "answered");
    assert_eq!(answered["message"]["author_unit"], county.as_str());
    let (status, again) = post(&officer, "收到，谢谢。");
    assert_eq!(status, 200, "{again}");
    let (status, closed) = server.rest(
        "POST",
        &format!("/api/v1/feedback/{thread}/close"),
        Some(&officer),
        None,
    );
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["thread"]["status"], "closed");
    let (status, _) = post(&officer, "too late");
    assert_eq!(status, 409, "a closed thread takes no messages");

    let (_, full) = server.rest(
        "GET",
        &format!("/api/v1/feedback/{thread}"),
        Some(&xian_moderator),
        None,
    );
    let numbers: Vec<i64> = full["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_issue_credentials_with_a_join_link_and_qr_code_inside_their_scope() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let all = units(&server, &admin);
    let xian_unit = stations_under(&all, "xian")[0].clone();
    let baoji_unit = stations_under(&all, "baoji")[0].clone();
    let moderator = server.login_as("xian-moderator", "moderator", Some("xian"));
    let officer = server.login_as("officer", "officer", Some(&xian_unit));
    let issue = |token: &str, unit: &str| {
        server.rest(
            "POST",
            &format!("/api/v1/units/{unit}/credentials"),
            Some(token),
            Some(json!({"label": "第一会议室"})),
        )
    };
    assert_eq!(issue(&moderator, &baoji_unit).0, 403);
    assert_eq!(issue(&officer, &xian_unit).0, 403);
    assert_eq!(issue(&moderator, "no-such-unit").0, 404);
    let (status, issued) = issue(&moderator, &xian_unit);
    assert_eq!(status, 201, "{issued}");
    let credential = issued["credential"].as_str().unwrap();
    assert_eq!(
        issued["join_link"],
        format!("http://{}/inbox?credential={credential}", server.address)
    );
    let svg = issued["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    let (status, session) = server.rest(
        "POST",
        "/api/v1/login/credential",
        None,
        Some(json!({"credential": credential})),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["account"]["unit"], xian_unit.as_str());
}
