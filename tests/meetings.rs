//! Meetings, announcements, Q&A and attendance end to end through the real binary:
//! accounts made with `rootcast account`, REST calls, RPC over the WebSocket, and the
//! meeting's channels subscribed with the tokens `meeting.join` returns — every rule
//! checked over the protocol, not in a page.

mod common;

use std::time::Duration;

use common::TestServer;
use common::ws::{WAIT, Ws};
use serde_json::{Value, json};

/// The stations (grassroots units) directly under the county `xian-01`.
fn county_stations(server: &TestServer, admin: &str) -> Vec<String> {
    let (status, units) = server.rest("GET", "/api/v1/org/units", Some(admin), None);
    assert_eq!(status, 200, "{units}");
    units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["parent"] == "xian-01")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The account id behind a token.
fn account_id(server: &TestServer, token: &str) -> String {
    let (status, me) = server.rest("GET", "/api/v1/me", Some(token), None);
    assert_eq!(status, 200, "{me}");
    me["account"]["id"].as_str().unwrap().to_owned()
}

fn schedule(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    server.rest("POST", "/api/v1/meetings", Some(token), Some(body))
}

fn meeting_body(target: Value, experts: &[&str], preapproval: bool) -> Value {
    json!({
        "title": "汛期工作部署会",
        "agenda": "1. 水情\n2. 值班",
        "starts_at": 1_795_996_800_000_i64,
        "target": target,
        "experts": experts,
        "qa_preapproval": preapproval,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_and_bad_input_are_enforced_over_rest_and_rpc() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let stations = county_stations(&server, &admin);
    let moderator = server.login_as("xian-mod", "moderator", Some("xian"));
    let other_moderator = server.login_as("baoji-mod", "moderator", Some("baoji"));
    let inside = server.login_as("inside", "member", Some(&stations[0]));
    let outside = server.login_as("outside", "officer", Some("baoji"));
    let expert = server.login_as("expert", "expert", None);
    let stranger_expert = server.login_as("stranger-expert", "expert", None);
    let expert_id = account_id(&server, &expert);

    // The experts a schedule form offers: every active expert account by display name,
    // for those who schedule meetings; anyone else is refused.
    let offered = json!([
        {"id": expert_id, "name": "expert"},
        {"id": account_id(&server, &stranger_expert), "name": "stranger-expert"},
    ]);
    for token in [&moderator, &admin] {
        let (status, body) = server.rest("GET", "/api/v1/meetings/experts", Some(token), None);
        assert_eq!((status, &body), (200, &offered));
    }
    for token in [&inside, &outside, &expert] {
        let (status, body) = server.rest("GET", "/api/v1/meetings/experts", Some(token), None);
        assert_eq!(status, 403, "{body}");
    }

    // Scheduling: inside the moderator's scope only; experts must be expert accounts.
    let (status, body) = schedule(
        &server,
        &other_moderator,
        meeting_body(json!({"subtrees": ["xian-01"]}), &[], false),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = schedule(
        &server,
        &inside,
        meeting_body(json!({"subtrees": ["xian-01"]}), &[], false),
    );
    assert_eq!(status, 403, "{body}");
    let inside_id = account_id(&server, &inside);
    let (status, body) = schedule(
        &server,
        &moderator,
        meeting_body(json!({"subtrees": ["xian-01"]}), &[&inside_id], false),
    );
    assert_eq!(status, 422, "a member is no expert: {body}");
    let (status, body) = schedule(
        &server,
        &moderator,
        meeting_body(json!({"units": ["no-such-unit"]}), &[], false),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = schedule(&server, &moderator, meeting_body(json!({}), &[], false));
    assert_eq!(status, 422, "an empty target: {body}");
    let mut blank = meeting_body(json!({"subtrees": ["xian-01"]}), &[], false);
    blank["title"] = json!("  ");
    let (status, body) = schedule(&server, &moderator, blank);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unprocessable");
    let (status, body) = schedule(&server, &moderator, json!({"title": "x"}));
    assert_eq!(status, 400, "missing fields: {body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, _) = server.rest("GET", "/api/v1/meetings", None, None);
    assert_eq!(status, 401);

    let (status, scheduled) = schedule(
        &server,
        &moderator,
        meeting_body(json!({"subtrees": ["xian-01"]}), &[&expert_id], false),
    );
    assert_eq!(status, 201, "{scheduled}");
    let meeting = scheduled["meeting"]["id"].as_str().unwrap().to_owned();
    assert_eq!(scheduled["meeting"]["status"], "scheduled");
    assert_eq!(
        scheduled["meeting"]["units"].as_array().unwrap().len(),
        stations.len() + 1,
        "the county and its stations"
    );
    let path = format!("/api/v1/meetings/{meeting}");

    // Who sees it.
    for (token, expected) in [
        (&moderator, 200),
        (&admin, 200),
        (&inside, 200),
        (&expert, 200),
        (&other_moderator, 403),
        (&outside, 403),
        (&stranger_expert, 403),
    ] {
        let (status, body) = server.rest("GET", &path, Some(token), None);
        assert_eq!(status, expected, "{body}");
        let (status, body) = server.rest("POST", &format!("{path}/join"), Some(token), None);
        assert_eq!(status, expected, "join: {body}");
    }
    let (_, got) = server.rest("GET", &path, Some(&inside), None);
    assert_eq!(got["access"]["moderator"], false);
    assert_eq!(got["access"]["unit"], json!(stations[0]));
    // Viewers get the number of targeted units, not the list (thousands of ids for a
    // whole organisation, sent on every join); moderators get both.
    assert_eq!(got["meeting"]["unit_count"], json!(stations.len() + 1));
    assert!(got["meeting"].get("units").is_none(), "{got}");
    assert_eq!(
        got["meeting"]["expert_names"],
        json!({ expert_id.as_str(): "expert" }),
        "experts' display names"
    );
    let (_, joined) = server.rest("POST", &format!("{path}/join"), Some(&inside), None);
    assert_eq!(joined["meeting"]["unit_count"], json!(stations.len() + 1));
    assert!(joined["meeting"].get("units").is_none(), "{joined}");
    let (_, got) = server.rest("GET", &path, Some(&moderator), None);
    assert_eq!(got["access"]["moderator"], true);
    assert_eq!(
        got["meeting"]["units"].as_array().map(Vec::len),
        Some(stations.len() + 1)
    );
    let listed = |token: &str| -> Vec<Value> {
        let (status, list) = server.rest("GET", "/api/v1/meetings", Some(token), None);
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone())
            .collect()
    };
    assert_eq!(listed(&inside), vec![json!(meeting)]);
    assert_eq!(listed(&expert), vec![json!(meeting)]);
    assert!(listed(&other_moderator).is_empty());
    assert!(listed(&outside).is_empty());

    // Moderation is for moderators only.
    let (status, _) = server.rest("POST", &format!("{path}/live"), Some(&inside), None);
    assert_eq!(status, 403);
    let (status, _) = server.rest(
        "POST",
        &format!("{path}/announcements"),
        Some(&inside),
        Some(json!({"body": "hi"})),
    );
    assert_eq!(status, 403);
    let (status, _) = server.rest("GET", &format!("{path}/attendance"), Some(&inside), None);
    assert_eq!(status, 403);
    let (status, _) = server.rest(
        "GET",
        &format!("{path}/questions.csv"),
        Some(&other_moderator),
        None,
    );
    assert_eq!(status, 403);

    // Unknown things are 404.
    for (method, unknown) in [
        ("GET", "/api/v1/meetings/nope".to_owned()),
        ("POST", "/api/v1/meetings/nope/join".to_owned()),
        ("GET", "/api/v1/meetings/nope/questions".to_owned()),
        ("POST", "/api/v1/questions/nope/vote".to_owned()),
        ("DELETE", "/api/v1/questions/nope".to_owned()),
    ] {
        let (status, body) = server.rest(method, &unknown, Some(&admin), None);
        assert_eq!(status, 404, "{method} {unknown}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }

    // Bad input.
    let (status, body) = server.rest(
        "POST",
        &format!("{path}/live"),
        Some(&moderator),
        Some(json!({"stream": "../etc"})),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.rest(
        "POST",
        &format!("{path}/announcements"),
        Some(&moderator),
        Some(json!({"body": "x", "level": "loud"})),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.rest(
        "GET",
        &format!("{path}/questions?sort=random"),
        Some(&inside),
        None,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.rest(
        "POST",
        &format!("{path}/questions"),
        Some(&inside),
        Some(json!({"body": ""})),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.rest(
        "POST",
        &format!("{path}/questions"),
        Some(&inside),
        Some(json!({"text": "hi"})),
    );
    assert_eq!(status, 400, "{body}");

    // The same rules over RPC.
    let mut outside_ws = Ws::connect(&server, &outside).await;
    assert_eq!(
        outside_ws
            .rpc("meeting.join", json!({"meeting": meeting}))
            .await,
        Err(1403)
    );
    assert_eq!(
        outside_ws
            .rpc("meeting.join", json!({"meeting": "nope"}))
            .await,
        Err(1404)
    );
    assert_eq!(
        outside_ws
            .rpc("qa.ask", json!({"meeting": meeting, "body": "let me in"}))
            .await,
        Err(1403)
    );
    assert_eq!(
        outside_ws.rpc("meeting.join", json!({"meet": "x"})).await,
        Err(1400)
    );
    let mut other_ws = Ws::connect(&server, &other_moderator).await;
    assert_eq!(
        other_ws
            .rpc("meeting.live", json!({"meeting": meeting}))
            .await,
        Err(1403)
    );
    assert_eq!(
        outside_ws.rpc("meeting.experts", json!({})).await,
        Err(1403)
    );
    let mut moderator_ws = Ws::connect(&server, &moderator).await;
    assert_eq!(
        moderator_ws.rpc("meeting.experts", json!({})).await,
        Ok(offered)
    );
    let live = moderator_ws
        .rpc(
            "meeting.live",
            json!({"meeting": meeting, "stream": "county-briefing"}),
        )
        .await
        .expect("the moderator goes live");
    assert_eq!(live["meeting"]["status"], "live");
    assert_eq!(live["media"]["whip"], "/whip/county-briefing");
    assert_eq!(live["media"]["whep"], "/whep/county-briefing");
    assert!(
        live["media"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // A channel token for one meeting does not open a channel of another.
    let (_, joined) = server.rest("POST", &format!("{path}/join"), Some(&inside), None);
    assert_eq!(joined["media"]["whep"], "/whep/county-briefing");
    let mut wrong_channel = Ws::connect(&server, &inside).await;
    assert!(
        wrong_channel
            .refused(json!({
                "channel": "meeting:other",
                "token": joined["channels"]["meeting"]["token"],
            }))
            .await,
        "a token for another channel is refused"
    );
    let mut inside_ws = Ws::connect(&server, &inside).await;
    let reply = inside_ws
        .command(
            "subscribe",
            json!({"channel": format!("qa:{meeting}@moderators")}),
        )
        .await;
    assert!(
        reply.get("error").is_some(),
        "the moderators' channel is closed to viewers: {reply}"
    );
    assert!(joined["channels"].get("qa_moderators").is_none());
    assert!(joined["channels"].get("chat_moderators").is_none());
    assert_eq!(
        joined["channels"]["chat"]["channel"],
        format!("meeting-chat:{meeting}"),
        "join hands out the chat channel's token too: {joined}"
    );

    // Ended: no more questions; ending twice is a conflict.
    let (status, _) = server.rest("POST", &format!("{path}/end"), Some(&moderator), None);
    assert_eq!(status, 200);
    let (status, body) = server.rest("POST", &format!("{path}/end"), Some(&moderator), None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(
        inside_ws
            .rpc("qa.ask", json!({"meeting": meeting, "body": "too late?"}))
            .await,
        Err(1409)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_move_live_with_anonymity_preapproval_votes_merge_and_answers() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let stations = county_stations(&server, &admin);
    let moderator = server.login_as("xian-mod", "moderator", Some("xian"));
    let asker = server.login_as("asker", "member", Some(&stations[0]));
    let viewer = server.login_as("viewer", "member", Some(&stations[1]));
    let expert = server.login_as("expert", "expert", None);
    let asker_id = account_id(&server, &asker);
    let expert_id = account_id(&server, &expert);
    let (status, scheduled) = schedule(
        &server,
        &moderator,
        meeting_body(json!({"subtrees": ["xian-01"]}), &[&expert_id], true),
    );
    assert_eq!(status, 201, "{scheduled}");
    let meeting = scheduled["meeting"]["id"].as_str().unwrap().to_owned();
    let public = format!("qa:{meeting}");
    let moderators = format!("qa:{meeting}@moderators");
    let asker_channel = format!("qa:{meeting}#{asker_id}");
    let state = format!("meeting:{meeting}");

    // Everyone joins over RPC and subscribes with the tokens it returns.
    let mut mod_ws = Ws::connect(&server, &moderator).await;
    let mut asker_ws = Ws::connect(&server, &asker).await;
    let mut viewer_ws = Ws::connect(&server, &viewer).await;
    let mut expert_ws = Ws::connect(&server, &expert).await;
    for (ws, keys) in [
        (&mut mod_ws, &["meeting", "qa", "qa_moderators"][..]),
        (&mut asker_ws, &["meeting", "qa", "qa_personal"][..]),
        (&mut viewer_ws, &["meeting", "qa", "qa_personal"][..]),
        (&mut expert_ws, &["meeting", "qa"][..]),
    ] {
        let joined = ws
            .rpc("meeting.join", json!({"meeting": meeting}))
            .await
            .expect("join");
        for key in keys {
            ws.subscribe_entry(&joined["channels"][key]).await;
        }
    }

    // An anonymous question waits for approval: the moderators and the asker see it,
    // with the asker for the moderators.
    let asked = asker_ws
        .rpc(
            "qa.ask",
            json!({"meeting": meeting, "body": "Who pays for the sandbags?", "anonymous": true}),
        )
        .await
        .expect("ask");
    let q1 = asked["question"]["id"].as_str().unwrap().to_owned();
    assert_eq!(asked["question"]["status"], "pending");
    let seen = mod_ws.next_of(&moderators, "question").await;
    assert_eq!(seen["question"]["id"], json!(q1));
    assert_eq!(seen["question"]["asker"]["id"], json!(asker_id));
    assert_eq!(seen["question"]["asker"]["unit"], json!(stations[0]));
    let own = asker_ws.next_of(&asker_channel, "question").await;
    assert_eq!(own["question"]["status"], "pending");
    let listed = viewer_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(
        listed["questions"],
        json!([]),
        "pending is invisible to others"
    );
    let listed = asker_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(
        listed["questions"][0]["id"],
        json!(q1),
        "the asker sees their own"
    );
    // Others cannot act on it either.
    assert_eq!(
        viewer_ws.rpc("qa.vote", json!({"question": q1})).await,
        Err(1404)
    );
    assert_eq!(
        viewer_ws.rpc("qa.approve", json!({"question": q1})).await,
        Err(1404)
    );
    assert_eq!(
        asker_ws.rpc("qa.approve", json!({"question": q1})).await,
        Err(1403)
    );

    // Approved: the first thing the viewer hears on the public channel, without asker.
    mod_ws
        .rpc("qa.approve", json!({"question": q1}))
        .await
        .expect("approve");
    let public_push = viewer_ws.next(&public).await;
    assert_eq!(public_push["type"], "question");
    assert_eq!(public_push["question"]["id"], json!(q1));
    assert_eq!(public_push["question"]["status"], "open");
    assert_eq!(public_push["question"]["asker"], Value::Null);
    let text = public_push.to_string();
    assert!(
        !text.contains(&asker_id) && !text.contains("asker\":{"),
        "no trace of the asker: {text}"
    );
    let approved = asker_ws.next_of(&public, "question").await;
    assert_eq!(approved["question"]["votes"], 0);
    let full = mod_ws.next_of(&moderators, "question").await;
    assert_eq!(full["question"]["status"], "open");
    assert_eq!(full["question"]["asker"]["id"], json!(asker_id));
    let listed = viewer_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(listed["questions"][0]["asker"], Value::Null);
    assert!(!listed.to_string().contains(&asker_id));
    let listed = mod_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(listed["questions"][0]["asker"]["id"], json!(asker_id));

    // Votes: one per account, withdrawable, live.
    let voted = viewer_ws
        .rpc("qa.vote", json!({"question": q1}))
        .await
        .unwrap();
    assert_eq!(
        (voted["counted"].clone(), voted["question"]["votes"].clone()),
        (json!(true), json!(1))
    );
    let again = viewer_ws
        .rpc("qa.vote", json!({"question": q1}))
        .await
        .unwrap();
    assert_eq!(
        (again["counted"].clone(), again["question"]["votes"].clone()),
        (json!(false), json!(1))
    );
    let (status, body) = server.rest(
        "POST",
        &format!("/api/v1/questions/{q1}/vote"),
        Some(&viewer),
        None,
    );
    assert_eq!(
        (status, body["counted"].clone()),
        (200, json!(false)),
        "{body}"
    );
    let pushed = asker_ws.next_of(&public, "question").await;
    assert_eq!(pushed["question"]["votes"], 1);
    let withdrawn = viewer_ws
        .rpc("qa.unvote", json!({"question": q1}))
        .await
        .unwrap();
    assert_eq!(withdrawn["question"]["votes"], 0);
    let pushed = asker_ws.next_of(&public, "question").await;
    assert_eq!(pushed["question"]["votes"], 0);
    mod_ws
        .rpc("qa.vote", json!({"question": q1}))
        .await
        .unwrap();

    // A duplicate, merged: its votes move, it points at the target.
    let q2 = asker_ws
        .rpc(
            "qa.ask",
            json!({"meeting": meeting, "body": "Sandbags: who pays?"}),
        )
        .await
        .unwrap()["question"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    mod_ws
        .rpc("qa.approve", json!({"question": q2}))
        .await
        .unwrap();
    viewer_ws
        .rpc("qa.vote", json!({"question": q2}))
        .await
        .unwrap();
    let merged = mod_ws
        .rpc("qa.merge", json!({"question": q2, "into": q1}))
        .await
        .unwrap();
    assert_eq!(merged["question"]["status"], "merged");
    assert_eq!(merged["question"]["merged_into"], json!(q1));
    assert_eq!(
        merged["into"]["votes"], 2,
        "the moderator's and the viewer's"
    );
    let listed = viewer_ws
        .rpc("qa.list", json!({"meeting": meeting, "sort": "votes"}))
        .await
        .unwrap();
    let order: Vec<&Value> = listed["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| &q["id"])
        .collect();
    assert_eq!(order, [&json!(q1), &json!(q2)], "by votes");
    assert_eq!(listed["my_votes"], json!([q1]), "the viewer's vote moved");
    let listed = viewer_ws
        .rpc("qa.list", json!({"meeting": meeting, "sort": "time"}))
        .await
        .unwrap();
    assert_eq!(listed["questions"][0]["id"], json!(q2), "newest first");
    assert_eq!(
        mod_ws
            .rpc("qa.merge", json!({"question": q1, "into": q1}))
            .await,
        Err(1422)
    );

    // Assigned to the expert, who answers publicly, then privately to the asker.
    assert_eq!(
        expert_ws
            .rpc(
                "qa.answer",
                json!({"question": q1, "body": "Not yet assigned"})
            )
            .await,
        Err(1403)
    );
    assert_eq!(
        mod_ws
            .rpc("qa.assign", json!({"question": q1, "expert": asker_id}))
            .await,
        Err(1422),
        "only the meeting's experts"
    );
    let assigned = mod_ws
        .rpc("qa.assign", json!({"question": q1, "expert": expert_id}))
        .await
        .unwrap();
    assert_eq!(assigned["question"]["assigned_to"], json!(expert_id));
    let answered = expert_ws
        .rpc(
            "qa.answer",
            json!({"question": q1, "body": "The county pays for the sandbags."}),
        )
        .await
        .unwrap();
    assert_eq!(answered["answer"]["number"], 1);
    let pushed = viewer_ws.next_of(&public, "answer").await;
    assert_eq!(
        pushed["answer"]["body"],
        "The county pays for the sandbags."
    );
    assert_eq!(pushed["answer"]["private"], false);
    let private = expert_ws
        .rpc(
            "qa.answer",
            json!({"question": q1, "body": "Call me about your station.", "private": true}),
        )
        .await
        .unwrap();
    assert_eq!(private["answer"]["private"], true);
    let pushed = asker_ws.next_of(&asker_channel, "answer").await;
    assert_eq!(pushed["answer"]["body"], "Call me about your station.");
    let pushed = mod_ws.next_of(&moderators, "answer").await;
    assert_eq!(pushed["answer"]["number"], 1);
    let pushed = mod_ws.next_of(&moderators, "answer").await;
    assert_eq!(pushed["answer"]["private"], true);
    let answers_of = |list: &Value| -> Vec<Value> {
        list["questions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["id"] == json!(q1))
            .unwrap()["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["body"].clone())
            .collect()
    };
    let viewer_list = viewer_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(
        answers_of(&viewer_list),
        [json!("The county pays for the sandbags.")]
    );
    let asker_list = asker_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(
        answers_of(&asker_list).len(),
        2,
        "the asker sees the private reply"
    );
    mod_ws
        .rpc("qa.answered", json!({"question": q1}))
        .await
        .unwrap();

    // Shown on screen: on meeting:<id> for every viewer, and in the join state.
    let (status, body) = server.rest(
        "POST",
        &format!("/api/v1/meetings/{meeting}/screen"),
        Some(&moderator),
        Some(json!({"question": q1})),
    );
    assert_eq!(status, 200, "{body}");
    let screen = viewer_ws.next_of(&state, "screen").await;
    assert_eq!(screen["question"]["id"], json!(q1));
    assert_eq!(screen["question"]["asker"], Value::Null);
    let joined = viewer_ws
        .rpc("meeting.join", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(joined["state"]["screen"]["id"], json!(q1));
    let (status, _) = server.rest(
        "POST",
        &format!("/api/v1/meetings/{meeting}/screen"),
        Some(&moderator),
        Some(json!({"question": q2})),
    );
    assert_eq!(status, 409, "a merged question does not go on screen");

    // The CSV export holds questions and answers, for moderators only.
    let (status, _) = server.rest(
        "GET",
        &format!("/api/v1/meetings/{meeting}/questions.csv"),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 403);
    let csv = mod_ws
        .rpc("qa.export", json!({"meeting": meeting}))
        .await
        .unwrap()["csv"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("question_id,asked_at,status,votes"),
        "{csv}"
    );
    assert_eq!(lines.len(), 1 + 2 + 1, "two answers of q1, q2 alone: {csv}");
    assert!(
        csv.contains("Who pays for the sandbags?") && csv.contains("Call me about your station.")
    );
    assert!(
        lines[1..].iter().any(|l| l.contains(",true,asker,")),
        "moderators see the anonymous asker: {csv}"
    );
    let (status, body) = server.rest(
        "GET",
        &format!("/api/v1/meetings/{meeting}/questions.csv"),
        Some(&moderator),
        None,
    );
    assert_eq!(status, 200);
    assert!(body.is_null(), "CSV, not JSON");

    // Deleted: it disappears for everyone, live, and leaves the screen.
    mod_ws
        .rpc("qa.delete", json!({"question": q1}))
        .await
        .unwrap();
    let removed = viewer_ws.next_of(&public, "question_removed").await;
    assert_eq!(removed["id"], json!(q1));
    let screen = viewer_ws.next_of(&state, "screen").await;
    assert_eq!(screen["question"], Value::Null);
    let removed = asker_ws.next_of(&asker_channel, "question_removed").await;
    assert_eq!(removed["id"], json!(q1));
    let listed = viewer_ws
        .rpc("qa.list", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert!(
        listed["questions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["id"] != json!(q1))
    );
    assert_eq!(
        viewer_ws.rpc("qa.vote", json!({"question": q1})).await,
        Err(1404)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendance_follows_real_subscriptions_and_the_report_adds_up() {
    let server = TestServer::start("");
    let admin = server.login_as("hq-admin", "admin", None);
    let stations = county_stations(&server, &admin);
    let (one, two, three) = (&stations[0], &stations[1], &stations[2]);
    let moderator = server.login_as("xian-mod", "moderator", Some("xian"));
    let officer_one = server.login_as("officer-one", "officer", Some(one));
    let member_one = server.login_as("member-one", "member", Some(one));
    let officer_two = server.login_as("officer-two", "officer", Some(two));
    let officer_three = server.login_as("officer-three", "officer", Some(three));
    let (status, scheduled) = schedule(
        &server,
        &moderator,
        meeting_body(json!({"units": [one, two, three]}), &[], false),
    );
    assert_eq!(status, 201, "{scheduled}");
    let meeting = scheduled["meeting"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/meetings/{meeting}");
    let channel = format!("meeting:{meeting}");
    let (status, _) = server.rest("POST", &format!("{path}/live"), Some(&moderator), None);
    assert_eq!(status, 200);

    // Unit one on two screens, unit two on one, unit three online but not watching.
    let mut watchers = Vec::new();
    for token in [&officer_one, &member_one, &officer_two] {
        let mut ws = Ws::connect(&server, token).await;
        let joined = ws
            .rpc("meeting.join", json!({"meeting": meeting}))
            .await
            .unwrap();
        ws.subscribe_entry(&joined["channels"]["meeting"]).await;
        watchers.push(ws);
    }
    let mut three_ws = Ws::connect(&server, &officer_three).await;
    let mut mod_ws = Ws::connect(&server, &moderator).await;
    let joined = mod_ws
        .rpc("meeting.join", json!({"meeting": meeting}))
        .await
        .unwrap();
    mod_ws.subscribe_entry(&joined["channels"]["meeting"]).await;

    let (status, now) = server.rest("GET", &format!("{path}/attendance"), Some(&moderator), None);
    assert_eq!(status, 200, "{now}");
    let connections = |now: &Value, unit: &str| -> u64 {
        now["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == unit)
            .unwrap()["connections"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(connections(&now, one), 2);
    assert_eq!(connections(&now, two), 1);
    assert_eq!(connections(&now, three), 0);
    assert_eq!(now["not_connected"], json!([three]));
    assert_eq!(now["connected_units"], 2);
    assert_eq!(now["connections"], 3);
    assert_eq!(
        now["connections_without_unit"], 1,
        "the moderator watches for no unit"
    );
    let county = now["by_subtree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["unit"] == "xian-01")
        .expect("the county's roll-up")
        .clone();
    assert_eq!(
        (
            county["targeted_units"].clone(),
            county["connected_units"].clone(),
            county["connections"].clone()
        ),
        (json!(3), json!(2), json!(3))
    );

    // One click reminds the unit not connected, on its own channel.
    let reminded = mod_ws
        .rpc("attendance.remind", json!({"meeting": meeting}))
        .await
        .unwrap();
    assert_eq!(reminded["reminded"], json!([three]));
    let reminder = three_ws.next(&format!("unit:{three}")).await;
    assert_eq!(reminder["type"], "meeting_reminder");
    assert_eq!(reminder["meeting"]["id"], json!(meeting));

    // Headcount: the unit's officer only.
    let (status, body) = server.rest(
        "POST",
        &format!("{path}/headcount"),
        Some(&officer_one),
        Some(json!({"headcount": 12})),
    );
    assert_eq!(status, 200, "{body}");
    let pushed = mod_ws.next_of(&channel, "headcount").await;
    assert_eq!(
        (pushed["unit"].clone(), pushed["headcount"].clone()),
        (json!(one), json!(12))
    );
    // Unit two's meeting-room screen reports its room (a credential login).
    let printed = server.account(&["credential", "--unit", two, "--label", "room"]);
    let credential = printed
        .split_whitespace()
        .find(|word| word.starts_with("rcu_"))
        .expect("the credential is printed");
    let (status, session) = server.rest(
        "POST",
        "/api/v1/login/credential",
        None,
        Some(json!({"credential": credential})),
    );
    assert_eq!(status, 200, "{session}");
    let screen = session["token"].as_str().unwrap().to_owned();
    let (status, body) = server.rest(
        "POST",
        &format!("{path}/headcount"),
        Some(&screen),
        Some(json!({"headcount": 30})),
    );
    assert_eq!(status, 200, "{body}");
    for (token, body, expected) in [
        (&screen, json!({"unit": one, "headcount": 3}), 403),
        (&member_one, json!({"headcount": 3}), 403),
        (&officer_two, json!({"unit": one, "headcount": 3}), 403),
        (&officer_one, json!({"headcount": -2}), 422),
        (&officer_one, json!({"headcount": "many"}), 400),
    ] {
        let (status, reply) = server.rest(
            "POST",
            &format!("{path}/headcount"),
            Some(token),
            Some(body),
        );
        assert_eq!(status, expected, "{reply}");
    }

    // A question from unit one, an announcement to every screen.
    watchers[0]
        .rpc(
            "qa.ask",
            json!({"meeting": meeting, "body": "When is the next drill?"}),
        )
        .await
        .unwrap();
    let (status, _) = server.rest(
        "POST",
        &format!("{path}/announcements"),
        Some(&moderator),
        Some(json!({"body": "Break: back in 10 minutes", "level": "warning"})),
    );
    assert_eq!(status, 201);
    for ws in &mut watchers {
        let banner = ws.next_of(&channel, "announcement").await;
        assert_eq!(banner["announcement"]["body"], "Break: back in 10 minutes");
        assert_eq!(banner["announcement"]["level"], "warning");
    }

    // Unit two leaves; the live count follows and the log records the leave.
    watchers[2].unsubscribe(&channel).await;
    let (_, now) = server.rest("GET", &format!("{path}/attendance"), Some(&moderator), None);
    assert_eq!(connections(&now, two), 0);
    assert_eq!(connections(&now, one), 2);
    let mut missing: Vec<String> = serde_json::from_value(now["not_connected"].clone()).unwrap();
    missing.sort();
    let mut expected = vec![two.clone(), three.clone()];
    expected.sort();
    assert_eq!(missing, expected);
    let log = tokio::time::timeout(WAIT, async {
        loop {
            let (status, log) = server.rest(
                "GET",
                &format!("{path}/attendance/log"),
                Some(&moderator),
                None,
            );
            assert_eq!(status, 200, "{log}");
            let two_left = log
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["unit"] == json!(two) && r["left_at"].is_i64());
            if two_left {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the leave reaches the log");
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 4, "three screens and the moderator: {log}");
    assert_eq!(rows.iter().filter(|r| r["unit"] == json!(one)).count(), 2);
    assert!(rows.iter().all(|r| r["unit"] != json!(three)));

    // A dropped connection is a leave too.
    let dropped = watchers.remove(1);
    drop(dropped);
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, now) =
                server.rest("GET", &format!("{path}/attendance"), Some(&moderator), None);
            if connections(&now, one) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed connection leaves presence");

    // Unit one keeps watching on one screen for a while before the end.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = server.rest("POST", &format!("{path}/end"), Some(&moderator), None);
    assert_eq!(status, 200);
    let (status, report) = server.rest("GET", &format!("{path}/report"), Some(&moderator), None);
    assert_eq!(status, 200, "{report}");
    let live_ms = report["ended_at"].as_i64().unwrap() - report["live_at"].as_i64().unwrap();
    let row = |unit: &str| -> Value {
        report["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == unit)
            .unwrap()
            .clone()
    };
    let (r1, r2, r3) = (row(one), row(two), row(three));
    assert_eq!(report["targeted_units"], 3);
    assert_eq!(report["joined_units"], 2);
    assert!(r1["joined_at"].is_i64() && r2["joined_at"].is_i64());
    assert!(r3["joined_at"].is_null());
    assert_eq!(
        (
            r1["headcount"].clone(),
            r2["headcount"].clone(),
            r3["headcount"].clone()
        ),
        (json!(12), json!(30), Value::Null)
    );
    assert_eq!(
        (r1["questions_asked"].clone(), r2["questions_asked"].clone()),
        (json!(1), json!(0))
    );
    let seconds = |r: &Value| r["seconds_watched"].as_i64().unwrap();
    // Unit one watched until the end (one screen stayed), unit two left earlier.
    assert!(seconds(&r1) >= 1, "{r1}");
    assert!(seconds(&r1) * 1000 <= live_ms, "{r1} in {live_ms} ms");
    assert!(seconds(&r1) >= seconds(&r2), "{r1} {r2}");
    assert_eq!(seconds(&r3), 0);
    assert_eq!(r3["minutes_watched"], 0.0);

    let (status, _) = server.rest("GET", &format!("{path}/report"), Some(&officer_one), None);
    assert_eq!(status, 403);
    let bearer = format!("Bearer {moderator}");
    let (status, csv) = common::http_request(
        &server.address,
        "GET",
        &format!("{path}/report.csv"),
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "unit,name,joined_at,minutes_watched,headcount,questions_asked"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    let line_one: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with(&format!("{one},")))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(line_one[2], r1["joined_at"].to_string());
    assert_eq!(line_one[4], "12");
    assert_eq!(line_one[5], "1");
    let line_three = lines
        .iter()
        .find(|l| l.starts_with(&format!("{three},")))
        .unwrap();
    assert!(line_three.ends_with(",,0.00,,0"), "{line_three}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn going_live_hands_out_relay_tokens_the_relay_accepts() {
    let server = TestServer::start("[relay]\nrequire_token = true\n");
    let moderator = server.login_as("xian-mod", "moderator", Some("xian"));
    let admin = server.login_as("hq-admin", "admin", None);
    let stations = county_stations(&server, &admin);
    let viewer = server.login_as("viewer", "member", Some(&stations[0]));
    let (status, scheduled) = schedule(
        &server,
        &moderator,
        meeting_body(json!({"subtrees": ["xian-01"]}), &[], false),
    );
    assert_eq!(status, 201, "{scheduled}");
    let meeting = scheduled["meeting"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/meetings/{meeting}");
    let (_, joined) = server.rest("POST", &format!("{path}/join"), Some(&viewer), None);
    assert_eq!(
        joined["media"],
        Value::Null,
        "nothing to watch before it is live"
    );
    let (status, live) = server.rest("POST", &format!("{path}/live"), Some(&moderator), None);
    assert_eq!(status, 200, "{live}");
    let stream = format!("meeting-{meeting}");
    assert_eq!(
        live["media"]["stream"],
        json!(stream),
        "the default stream name"
    );
    let publish = live["media"]["token"].as_str().unwrap().to_owned();
    let (_, joined) = server.rest("POST", &format!("{path}/join"), Some(&viewer), None);
    assert_eq!(joined["media"]["whep"], json!(format!("/whep/{stream}")));
    let view = joined["media"]["token"].as_str().unwrap().to_owned();

    // The relay checks the token before the body: a JSON body past a good token is 415
    // (not SDP), a token without the access or for another stream is 403.
    let offer = |path: &str, token: &str| -> u16 {
        let bearer = format!("Bearer {token}");
        common::http_request(
            &server.address,
            "POST",
            path,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            b"{}",
        )
        .0
    };
    assert_eq!(offer(&format!("/whip/{stream}"), &publish), 415);
    assert_eq!(offer(&format!("/whep/{stream}"), &view), 415);
    assert_eq!(offer(&format!("/whip/{stream}"), &view), 403);
    assert_eq!(offer("/whip/another-stream", &publish), 403);
    assert_eq!(offer(&format!("/whip/{stream}"), "forged"), 401);
}
