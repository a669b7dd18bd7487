//! The directive pages in a real browser: `/console` (the moderator console) and `/inbox`
//! (a unit's inbox), driven by scripts in `tests/web/` with `playwright-core` and Debian's
//! `chromium`, against `rootcast serve` with the demo organisation.
//!
//! - `directive_modules.test.mjs` (Node's test runner): the pure modules — Markdown
//!   escaping and links, target resolution and the roll-up.
//! - `directive_modules.mjs`: the same Markdown renderer with a real DOM, and both pages
//!   loading in both languages without errors.
//! - `directives.mjs`: a moderator sends to a city; two officers' inboxes get the banner
//!   live; one acknowledges and the console's map shows it within seconds; a meeting-room
//!   screen that was away catches up; a correction asks for a fresh acknowledgement and
//!   a retraction strikes it through.
//!
//! A test fails, saying what to install, when node, Chromium or playwright-core is missing.

mod common;

use std::time::Duration;

use std::path::Path;
use std::process::{Command, Stdio};

use common::browser::run_node_script;
use common::{TestServer, wait_with_timeout};
use serde_json::{Value, json};

/// Each script has its own 120 s watchdog; this one catches a hung node or browser.

#[test]
fn pure_modules_pass_their_node_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("node")
        .arg("--test")
        .arg(root.join("tests/web/directive_modules.test.mjs"))
        .current_dir(root.join("tests"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run `node` (install Node.js 20 or newer): {error}"));
    match wait_with_timeout(&mut child, Duration::from_secs(60)) {
        Some(status) => assert!(
            status.success(),
            "tests/web/directive_modules.test.mjs failed ({status}); see its output above"
        ),
        None => panic!("tests/web/directive_modules.test.mjs did not finish within 60 s"),
    }
}

#[test]
fn directive_modules_and_pages_load_in_a_real_browser() {
    let server = TestServer::start("");
    run_node_script("directive_modules.mjs", &server, &[]);
}

#[test]
fn a_directive_goes_from_the_console_to_inboxes_and_back_in_a_real_browser() {
    let server = TestServer::start("");
    let admin = server.login_as("web-admin", "admin", None);
    let (status, units) = server.rest("GET", "/api/v1/org/units", Some(&admin), None);
    assert_eq!(status, 200, "{units}");
    let units = units.as_array().expect("a list of units").clone();

    // The smallest city with at least three grassroots units: small enough for a quick
    // test, big enough for two officers and a screen.
    let under = |ancestor: &str| -> Vec<&Value> {
        units
            .iter()
            .filter(|u| {
                u["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!("/{ancestor}/")))
            })
            .collect()
    };
    let city = units
        .iter()
        .filter(|u| u["level"] == "city")
        .filter(|u| {
            under(u["id"].as_str().unwrap())
                .iter()
                .filter(|v| v["level"] == "unit" && v["kind"] == "station")
                .count()
                >= 3
        })
        .min_by_key(|u| under(u["id"].as_str().unwrap()).len())
        .expect("a city with three stations in the demo organisation");
    let city_id = city["id"].as_str().unwrap();
    let in_city = under(city_id);
    let stations: Vec<&str> = in_city
        .iter()
        .filter(|u| u["level"] == "unit" && u["kind"] == "station")
        .map(|u| u["id"].as_str().unwrap())
        .take(3)
        .collect();

    let moderator = account(&server, "web-moderator", "moderator", Some("sx"));
    let officers: Vec<Value> = stations[..2]
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let mut officer = account(&server, &format!("web-officer-{i}"), "officer", Some(unit));
            officer["unit"] = json!(unit);
            officer
        })
        .collect();
    let issued = server.account(&["credential", "--unit", stations[2], "--label", "web test"]);
    let credential = issued
        .lines()
        .nth(1)
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| panic!("a credential on the second line of: {issued}"))
        .to_owned();

    let setup = json!({
        "moderator": moderator,
        "city": {"id": city_id, "name": city["name"], "count": in_city.len()},
        "officers": officers,
        "screen": {"unit": stations[2], "credential": credential},
    });
    run_node_script(
        "directives.mjs",
        &server,
        &[("ROOTCAST_TEST_DIRECTIVES", setup.to_string())],
    );
}

/// Creates an account with `rootcast account add`; returns `{username, password}`.
fn account(server: &TestServer, username: &str, role: &str, unit: Option<&str>) -> Value {
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
    server.account(&args);
    json!({"username": username, "password": password})
}
