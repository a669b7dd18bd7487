//! The recordings over HTTP, merged into the relay's router ([`crate::whip::router`]).
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /recordings` | `200` JSON `{"recordings":[{"name","stream","started_at","duration","size"}]}`, newest first (`duration` in seconds, `size` in bytes, `started_at` RFC 3339 UTC) |
//! | `GET /recordings/{name}` | `200` `video/webm` with `Accept-Ranges: bytes`; with one `Range: bytes=…` range `206` and `Content-Range`; `416` for a range past the end; `404` for anything that is not a finished recording's name (this includes every path-traversal attempt: a name is exactly `<stream>-<start>.webm`) |
//!
//! `HEAD` answers like `GET` without the body. Several ranges in one request, or a malformed
//! `Range`, get the whole file (`200`), as RFC 9110 §14.2 allows.
//!
//! Access: with `require_token` off anyone may list and fetch. With it on, each needs a
//! view token (`Authorization: Bearer …` or, for a `<video src>`, `?token=…`): the list
//! shows the recordings of the streams the token may view (`401` without a token), a file
//! needs a token for its stream (`401`/`403`).
//!
//! [`serve_file`] is the file part on its own, for a caller that checks access its own way:
//! the hub serves a meeting's recordings with it (`/api/v1/meetings/{id}/recordings/{name}`,
//! through the binary's `src/recording_link.rs`).

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::writer::{self, RecordingInfo};
use crate::driver::RelayHandle;
use crate::hooks::{Access, AuthRejection};

/// Bytes read from the file per body chunk.
const CHUNK: usize = 64 * 1024;

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: the whole file (`200`).
    Full,
    /// Bytes `start..=end` (`206`).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// The range starts past the end (`416`).
    Unsatisfiable,
}

/// Reads one `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-`, `-n`.
pub fn parse_range(value: &str, size: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // Suffix: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start: size.saturating_sub(n),
                    end: size - 1,
                }
            }
        }
        (false, Some(start), last) => {
            if !last_ok(last, last_text(spec)) {
                return RangeAnswer::Full;
            }
            if start >= size {
                return RangeAnswer::Unsatisfiable;
            }
            match last {
                Some(end) if end < start => RangeAnswer::Full,
                Some(end) => RangeAnswer::Partial {
                    start,
                    end: end.min(size - 1),
                },
                None => RangeAnswer::Partial {
                    start,
                    end: size - 1,
                },
            }
        }
        _ => RangeAnswer::Full,
    }
}

/// The text after the `-` of a range spec.
fn last_text(spec: &str) -> &str {
    spec.split_once('-').map_or("", |(_, l)| l.trim())
}

/// A last-byte part is either absent (empty) or a number.
fn last_ok(parsed: Option<u64>, text: &str) -> bool {
    text.is_empty() || parsed.is_some()
}

/// The folder recordings are listed from, if one is configured.
fn folder(relay: &RelayHandle) -> Option<PathBuf> {
    relay.config().recording_folder()
}

/// The view token of a request: the bearer token, else `?token=`.
fn token<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .or_else(|| query.get("token").map(String::as_str))
        .filter(|t| !t.is_empty())
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn rejection(r: AuthRejection) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    text(status, r.to_string())
}

/// `GET /recordings`.
pub async fn list(
    State(relay): State<RelayHandle>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let require = relay.config().require_token;
    let token = token(&headers, &query).map(str::to_owned);
    if require && token.is_none() {
        return text(
            StatusCode::UNAUTHORIZED,
            "listing recordings needs a view token",
        );
    }
    let Some(dir) = folder(&relay) else {
        return json_list(&[]);
    };
    let listed = tokio::task::spawn_blocking(move || writer::list_recordings(&dir)).await;
    let mut recordings = match listed {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "recordings: cannot read the folder");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the recording folder cannot be read",
            );
        }
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "listing failed"),
    };
    if require {
        let auth = &relay.hooks().auth;
        recordings.retain(|r| {
            auth.authorize(Access::View, &r.stream, token.as_deref())
                .is_ok()
        });
    }
    json_list(&recordings)
}

fn json_list(recordings: &[RecordingInfo]) -> Response {
    let items: Vec<serde_json::Value> = recordings
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "stream": r.stream,
                "started_at": r.started_at(),
                "duration": r.duration_s,
                "size": r.size,
            })
        })
        .collect();
    let body = serde_json::json!({ "recordings": items }).to_string();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /recordings/{name}` (and `HEAD`).
pub async fn file(
    State(relay): State<RelayHandle>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let not_found = || text(StatusCode::NOT_FOUND, "no such recording");
    let Some((stream, _)) = writer::parse_name(&name) else {
        return not_found();
    };
    if relay.config().require_token {
        if let Err(r) = relay
            .hooks()
            .auth
            .authorize(Access::View, stream, token(&headers, &query))
        {
            return rejection(r);
        }
    }
    let Some(dir) = folder(&relay) else {
        return not_found();
    };
    serve_file(&dir, &name, &headers).await
}

/// Serves the finished recording `name` from `dir`: `200` or, for one `Range`, `206`
/// (`416` past the end), `404` for anything that is not a finished recording's name.
/// Access is the caller's business: the relay's `GET /recordings/{name}` checks a view
/// token for the stream first; the hub's meeting recordings route checks the meeting.
pub async fn serve_file(dir: &std::path::Path, name: &str, headers: &HeaderMap) -> Response {
    let not_found = || text(StatusCode::NOT_FOUND, "no such recording");
    if writer::parse_name(name).is_none() {
        return not_found();
    }
    let path = dir.join(name);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, name, "recordings: cannot open");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the recording cannot be read",
            );
        }
    };
    let size = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return not_found(),
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeAnswer::Full, |v| parse_range(v, size));
    let (status, start, len) = match range {
        RangeAnswer::Full => (StatusCode::OK, 0, size),
        RangeAnswer::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            let mut r = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the range is past the end",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the recording cannot be read",
        );
    }
    let body = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank",
                )),
                (file, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/webm"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        let p = |s| parse_range(s, 1000);
        assert_eq!(p("bytes=0-99"), Partial { start: 0, end: 99 });
        assert_eq!(
            p("bytes=500-"),
            Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            p("bytes=-100"),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(p("bytes=-5000"), Partial { start: 0, end: 999 });
        assert_eq!(
            p("bytes=990-5000"),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(p("bytes=1000-"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=0-1,5-6"), Full, "several ranges");
        assert_eq!(p("bytes=5-1"), Full, "reversed");
        assert_eq!(p("bytes=x-1"), Full);
        assert_eq!(p("bytes=1-x"), Full);
        assert_eq!(p("bytes=+1-2"), Full);
        assert_eq!(p("items=0-1"), Full);
        assert_eq!(p("bytes=-"), Full);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }
}
