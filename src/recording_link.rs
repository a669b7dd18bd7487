//! The hub's meeting recordings read from the relay's recording folder: the listing and
//! the Range-serving code of `rootcast_relay::record`, behind the hub's
//! [`RecordingLibrary`] (the hub crate knows nothing of WebM files, the relay nothing of
//! meetings).

use std::path::PathBuf;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rootcast_hub::service::recordings::{LibraryFuture, RecordingFile, RecordingLibrary};

/// The recordings in one folder (`relay.recording_dir`); none when no folder is set.
pub struct RelayRecordings {
    dir: Option<PathBuf>,
}

impl RelayRecordings {
    /// The library of `dir` (the relay's [`rootcast_config::RelayConfig::recording_folder`]).
    pub fn new(dir: Option<PathBuf>) -> RelayRecordings {
        RelayRecordings { dir }
    }
}

impl RecordingLibrary for RelayRecordings {
    fn recordings<'a>(
        &'a self,
        stream: &'a str,
    ) -> LibraryFuture<'a, std::io::Result<Vec<RecordingFile>>> {
        Box::pin(async move {
            let Some(dir) = self.dir.clone() else {
                return Ok(Vec::new());
            };
            let listed =
                tokio::task::spawn_blocking(move || rootcast_relay::record::list_recordings(&dir))
                    .await
                    .map_err(std::io::Error::other)??;
            Ok(listed
                .into_iter()
                .filter(|r| r.stream == stream)
                .map(|r| RecordingFile {
                    duration_ms: (r.ended_unix_ms() - r.started_unix_ms) as i64,
                    started_at: r.started_unix_ms as i64,
                    name: r.name,
                    stream: r.stream,
                    size: r.size,
                })
                .collect())
        })
    }

    fn serve<'a>(&'a self, name: &'a str, headers: &'a HeaderMap) -> LibraryFuture<'a, Response> {
        Box::pin(async move {
            match &self.dir {
                Some(dir) => rootcast_relay::record::http::serve_file(dir, name, headers).await,
                None => (StatusCode::NOT_FOUND, "no such recording").into_response(),
            }
        })
    }
}

/// How often expired recordings are looked for.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes recordings older than `retention_days` from `dir` now and then every hour
/// (`relay.recording_retention_days`); runs until aborted.
pub async fn enforce_retention(dir: PathBuf, retention_days: u32) {
    let retention_ms = u64::from(retention_days) * 86_400_000;
    let mut ticks = tokio::time::interval(RETENTION_SWEEP);
    loop {
        ticks.tick().await;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let cutoff = now_ms.saturating_sub(retention_ms);
        let folder = dir.clone();
        let swept = tokio::task::spawn_blocking(move || {
            rootcast_relay::record::delete_recordings_before(&folder, cutoff)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
        match swept {
            Ok(deleted) if !deleted.is_empty() => tracing::info!(
                count = deleted.len(),
                first = %deleted[0],
                retention_days,
                "deleted expired recordings"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "recording retention: cannot read the folder")
            }
        }
    }
}
