//! `relay.recording_retention_days`: the server deletes finished recordings that started
//! longer ago than that, at start-up and every hour, and touches nothing else in the
//! folder (recent recordings, one still being written, other files).

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::TestServer;

const DAY: Duration = Duration::from_secs(86_400);

/// The relay's name for a recording of `stream` started `ago` before now.
fn recording_name(stream: &str, ago: Duration) -> String {
    let start = SystemTime::now() - ago;
    let ms = start.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    rootcast_relay::record::writer::recording_name(stream, ms)
}

fn write_aged(dir: &std::path::Path, name: &str, age: Duration) {
    let path = dir.join(name);
    std::fs::write(&path, b"not really webm").unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn recordings_past_the_retention_are_deleted_and_nothing_else() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rootcast-retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let expired = format!("{}.webm", recording_name("town-hall", 40 * DAY));
    let recent = format!("{}.webm", recording_name("town-hall", 2 * DAY));
    let writing = format!("{}.webm.part", recording_name("town-hall", 40 * DAY));
    let other = "notes.txt".to_owned();
    write_aged(&dir, &expired, 40 * DAY);
    write_aged(&dir, &recent, 2 * DAY);
    write_aged(&dir, &writing, 40 * DAY);
    write_aged(&dir, &other, 40 * DAY);

    let _server = TestServer::start_with_env(
        "",
        &[
            ("ROOTCAST_RELAY_RECORDING_DIR", &dir.to_string_lossy()),
            ("ROOTCAST_RELAY_RECORDING_RETENTION_DAYS", "30"),
        ],
    );
    // The first sweep runs at start-up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while dir.join(&expired).exists() {
        assert!(
            Instant::now() < deadline,
            "the expired recording is still there: {:?}",
            files(&dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut expected = vec![recent, writing, other];
    expected.sort();
    assert_eq!(files(&dir), expected, "only the expired recording goes");
    std::fs::remove_dir_all(&dir).unwrap();
}
