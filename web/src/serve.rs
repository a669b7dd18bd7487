//! Turning a prepared file and the request headers into a response: 200 with the body, or
//! 304 when `If-None-Match` names the file's current entity tag.

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::catalog::{CACHE_CONTROL as CACHE_POLICY, PAGE_CSP, Prepared};

/// The response for `file`, honouring `If-None-Match`.
pub(crate) fn respond(file: &'static Prepared, request: &HeaderMap) -> Response {
    let not_modified = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|value| if_none_match_covers(value.as_bytes(), file.etag.as_bytes()));

    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut ok = Response::new(Body::from(file.bytes));
        ok.headers_mut()
            .insert(CONTENT_TYPE, file.content_type.clone());
        ok
    };
    let headers = response.headers_mut();
    // RFC 9110 §15.4.5: a 304 carries the ETag and Cache-Control a 200 would have had.
    headers.insert(ETAG, file.etag.clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if file.is_page {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    }
    response
}

/// The 404 for a name that is not in the catalog: a short plain-text body.
pub(crate) fn not_found(path: &str) -> Response {
    // Echo at most a short prefix of what the client asked for; `nosniff` keeps it text.
    let shown: String = path.chars().take(120).collect();
    let mut response = (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("not found: /static/{shown}\n"),
    )
        .into_response();
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Whether one `If-None-Match` header value (`*` or a comma-separated list of entity tags)
/// matches `current`, using the weak comparison that RFC 9110 §13.1.2 prescribes for this
/// header: `W/"x"` matches `"x"`. A malformed list matches nothing, so the client gets the
/// full response.
fn if_none_match_covers(value: &[u8], current: &[u8]) -> bool {
    let mut rest = value.trim_ascii();
    if rest == b"*" {
        return true;
    }
    let current_opaque = current.strip_prefix(b"W/").unwrap_or(current);
    while !rest.is_empty() {
        let tag_start = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some(after_quote) = tag_start.strip_prefix(b"\"") else {
            return false;
        };
        let Some(close) = after_quote.iter().position(|&b| b == b'"') else {
            return false;
        };
        // The opaque tag with its quotes.
        let opaque = &tag_start[..close + 2];
        if opaque == current_opaque {
            return true;
        }
        rest = after_quote[close + 1..].trim_ascii_start();
        match rest.strip_prefix(b",") {
            Some(after_comma) => rest = after_comma.trim_ascii_start(),
            None if rest.is_empty() => {}
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::if_none_match_covers as covers;

    const TAG: &[u8] = b"\"0123456789abcdef\"";

    #[test]
    fn matches_exact_weak_listed_and_star() {
        assert!(covers(TAG, TAG));
        assert!(covers(b"W/\"0123456789abcdef\"", TAG));
        assert!(covers(b"\"other\", W/\"0123456789abcdef\"", TAG));
        assert!(covers(b"\"a\",\"0123456789abcdef\" ,\"b\"", TAG));
        assert!(covers(b" * ", TAG));
    }

    #[test]
    fn rejects_other_tags_and_malformed_values() {
        assert!(!covers(b"\"0123456789abcdee\"", TAG));
        assert!(!covers(b"0123456789abcdef", TAG));
        assert!(!covers(b"\"0123456789abcdef", TAG));
        assert!(!covers(b"\"a\" \"0123456789abcdef\"", TAG));
        assert!(!covers(b"", TAG));
        assert!(!covers(b"\"\"", TAG));
    }
}
