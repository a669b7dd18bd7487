//! The moderator's meeting console, the expert desk and the attendance report in headless
//! Chromium (`tests/web/meeting_console.mjs`): the moderator schedules a meeting on the
//! console's list view (the county `xian-01` ticked on the org-tree picker, the expert
//! chosen by name; the meeting must target exactly the county's units) and takes it live
//! from the console page and publishes the fake camera through the console's publish link; the
//! meeting-room TV (`/tv`) and two viewer pages (`/meeting`) play it. A viewer asks,
//! another votes, the moderator approves, puts it on screen and assigns it in the console,
//! the expert answers in the expert desk (publicly, then privately); the moderator deletes
//! a chat message, approves a held one and times a member out, all from the console; the
//! console's attendance panel shows the watching units and reminds the others; the
//! meeting ends from the console and the report page (and its CSV) matches what happened.
//!
//! Contained in a private network namespace `rc-mcon-<pid>` (`tests/common/browser.rs`
//! says how and why); needs root, node, Chromium and playwright-core.

mod common;

use common::TestServer;
use common::browser::{CONTAINED_RELAY_UDP_BIND, run_contained, run_node_script};
use serde_json::{Value, json};

/// Chat rules of the test server: a message with "spam" waits for a moderator.
const CONFIG: &str = "[chat]\nfilter_words = [\"spam\"]\nfilter_mode = \"hold\"\n";

#[test]
fn a_moderator_runs_a_live_meeting_from_the_console_with_the_expert_desk_and_the_report() {
    run_contained(
        "rc-mcon",
        "ROOTCAST_WEB_MEETING_CONSOLE_NETNS",
        "a_moderator_runs_a_live_meeting_from_the_console_with_the_expert_desk_and_the_report",
        || {
            let env = [("ROOTCAST_RELAY_UDP_BIND", CONTAINED_RELAY_UDP_BIND)];
            let server = TestServer::start_with_env(CONFIG, &env);
            let admin = server.login_as("hq-admin", "admin", None);
            let (stations, county) = county_units(&server, &admin);
            assert!(
                stations.len() >= 4,
                "four stations in xian-01: {stations:?}"
            );

            let moderator = server.add_account("xian-console-mod", "moderator", Some("xian"));
            // The console must show the expert by this name, not by the account id.
            let expert_name = "Dr. Wang (desk)";
            server.account(&[
                "add",
                "--username",
                "desk-expert",
                "--role",
                "expert",
                "--password",
                "desk-expert-password",
                "--display-name",
                expert_name,
            ]);
            let expert = json!({"username": "desk-expert", "password": "desk-expert-password"});
            let viewers: Vec<Value> = (0..2)
                .map(|i| {
                    server.add_account(&format!("console-viewer-{i}"), "member", Some(&stations[i]))
                })
                .collect();
            let credential = server.unit_credential(&stations[2], "room");

            // The meeting is for the whole county; stations 0-2 watch (two viewers and the
            // TV), station 3 and the county's other units stay away.
            let setup = json!({
                "moderator": moderator,
                "expert": expert,
                "expert_name": expert_name,
                "viewers": viewers,
                "county": {"id": "xian-01", "units": county},
                "screen": {"unit": stations[2], "credential": credential},
                "absent": stations[3],
            });
            run_node_script(
                "meeting_console.mjs",
                &server,
                &[("ROOTCAST_TEST_MEETING_CONSOLE", setup.to_string())],
            );
        },
    );
}

/// The units directly under county `xian-01` of the demo organisation, and every unit of
/// its subtree (the county itself included).
fn county_units(server: &TestServer, token: &str) -> (Vec<String>, Vec<String>) {
    let (status, units) = server.rest("GET", "/api/v1/org/units", Some(token), None);
    assert_eq!(status, 200, "{units}");
    let units = units.as_array().expect("a list of units");
    let ids = |keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        units
            .iter()
            .filter(|u| keep(u))
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let children = ids(&|u| u["parent"] == "xian-01");
    let subtree = ids(&|u| u["path"].as_str().unwrap().contains("/xian-01/"));
    assert_eq!(
        subtree.len(),
        children.len() + 1,
        "a county of grassroots units"
    );
    (children, subtree)
}
