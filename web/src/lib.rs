//! rootcast's browser application, embedded in the binary and served by [`router`].
//!
//! There is no build step and no framework: the files under `web/` are what the browser
//! runs. Modern JavaScript modules import each other with relative URLs, styles are plain
//! CSS, and every file is compiled into the binary with `include_bytes!`, so the binary
//! serves the same bytes wherever it runs.
//!
//! # Layout
//!
//! | path | what it is |
//! | --- | --- |
//! | `web/pages/*.html` | pages, each served at its own route (`live-state.html` at `/`, `publish.html` at `/publish`, `watch.html` at `/watch`, `console.html` at `/console`, `inbox.html` at `/inbox`, `meeting.html` at `/meeting`, `tv.html` at `/tv`, `meeting-console.html` at `/meeting-console`, `expert.html` at `/expert`, `meeting-report.html` at `/meeting-report`, `replay.html` at `/replay`) |
//! | `web/static/*` | scripts, styles and images, served at `/static/<name>` |
//! | `web/static/rootcast-client.js` | the protocol client every page uses: connect, subscribe, publish, RPC, presence, history, ping/pong, reconnect with recovery |
//! | `web/static/i18n.js` | language choice (zh-CN / English) and number/duration formatting |
//! | `web/static/rootcast.css` | the shared look: colours, cards, the connection-state badge |
//! | `web/static/live-state.js` | the live-state page: subscribes to `sys:stats` and renders it |
//! | `web/static/whip-client.js` | WHIP publishing and WHEP playback against the relay (offer, answer, `DELETE`) |
//! | `web/static/publish.js`, `watch.js`, `relay.css` | the camera publishing page and the viewer page with live `getStats()` figures |
//! | `web/static/console.js`, `inbox.js`, `directives.css` | the moderator console (compose, target picker, send, live acknowledgement map) and a unit's inbox (banner, receipts, acknowledge, reply) |
//! | `web/static/api.js`, `session-ui.js`, `directive-text.js` | what the directive pages share: REST calls with the login's bearer token, the login form and badge, their zh-CN/English text |
//! | `web/static/meeting-live.js`, `meeting.js`, `meeting.css` | a meeting's live state (join, channels, reload after reconnect) and WHEP player (retries, restarts, audio only on a weak link); the viewer page (video, announcement banner, Q&A, chat) |
//! | `web/static/tv.js`, `tv.css` | the meeting-room TV: full-screen video, announcement and directive banners, the question on screen, the join link; recovers by itself |
//! | `web/static/meeting-console.js`, `meeting-console.css` | the moderator's meeting console (`?id=`: go live, end, announcements, the Q&A queue, chat moderation, live attendance with reminders; without `id`: the meeting list and a schedule form with the target picker and the experts by name); the CSS is shared with the next two |
//! | `web/static/expert.js` | the expert desk: the questions assigned to the logged-in expert, live, answered publicly or privately |
//! | `web/static/meeting-report.js` | a meeting's attendance report per unit and its CSV download |
//! | `web/static/replay.js`, `replay.css` | an ended meeting's replay (`?id=`): its recordings in one `<video>`, one after the other, beside its questions, votes and public answers; selecting a question seeks to when it was asked |
//! | `web/static/markdown.js` | the Markdown subset of directives, rendered by building elements (never as HTML), links only to http(s) |
//! | `web/static/org-tree.js` | the org tree on the client: target resolution as the hub does it, per-subtree and per-level roll-up |
//! | `web/static/unit-picker.js` | the target picker both consoles share (a directive's target, a meeting's audience): org tree with a checkbox per subtree, kind and tag filters, the live count of units reached |
//! | `src/catalog.rs` | the table of embedded files and the headers worked out once per file |
//! | `src/serve.rs` | responses: 200, 304 for a matching `If-None-Match`, 404 |
//!
//! # Serving
//!
//! Every response carries a `Content-Type` from the file extension, a strong `ETag` (a hash
//! of the bytes, computed once) and `Cache-Control: no-cache`: the browser revalidates and
//! usually gets an empty 304. URLs carry no content hash (that would need a build step), so
//! long-lived caching could mix module versions after an upgrade. Pages also carry a
//! `Content-Security-Policy` that allows scripts, styles and connections to this origin only;
//! so pages use no inline scripts or styles.
//!
//! # Adding a page
//!
//! 1. Write `web/pages/<name>.html`; load its script with
//!    `<script type="module" src="/static/<name>.js"></script>` and the shared styles with
//!    `<link rel="stylesheet" href="/static/rootcast.css">`.
//! 2. Write `web/static/<name>.js`: `import { RootcastClient, websocketUrl } from
//!    "./rootcast-client.js";` and, for text in both languages, `./i18n.js`.
//! 3. List both files in `src/catalog.rs` (`PAGES` with the route, `STATIC_FILES`). The
//!    unit tests fail if a file in the folders is not listed or a reference does not resolve.
//! 4. Give elements a `data-testid` and drive the page from a browser test in `tests/web/`.

mod catalog;
mod serve;

use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::catalog::CATALOG;

/// Routes for the pages (`GET /` is the live-state page) and `GET /static/{*path}` for their
/// assets. `HEAD` is answered too; other methods get 405. The router sets no fallback, so it
/// can be merged with the hub's routes.
pub fn router() -> Router {
    let mut router = Router::new().route("/static/{*path}", get(static_file));
    for (route, page) in &CATALOG.pages {
        router = router.route(
            route,
            get(move |headers: HeaderMap| async move { serve::respond(page, &headers) }),
        );
    }
    router
}

async fn static_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match CATALOG.static_files.get(path.as_str()) {
        Some(file) => serve::respond(file, &headers),
        None => serve::not_found(&path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Method, Request, StatusCode, header};
    use tower::ServiceExt;

    async fn send(method: Method, uri: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn get(uri: &str) -> Response {
        send(Method::GET, uri, None).await
    }

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(&name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .to_str()
            .unwrap()
    }

    async fn body_of(response: Response) -> Vec<u8> {
        to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn root_serves_the_live_state_page() {
        let response = get("/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert!(
            header_of(&response, header::CONTENT_SECURITY_POLICY).contains("default-src 'self'")
        );
        let etag = header_of(&response, header::ETAG).to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18,
            "strong tag expected, got {etag}"
        );
        let body = String::from_utf8(body_of(response).await).unwrap();
        assert!(body.contains("<title>rootcast"), "{body}");
        assert!(body.contains("/static/live-state.js"));
    }

    #[tokio::test]
    async fn directive_pages_are_served_with_their_scripts() {
        for (route, script) in [("/console", "console.js"), ("/inbox", "inbox.js")] {
            let response = get(route).await;
            assert_eq!(response.status(), StatusCode::OK, "{route}");
            assert!(
                header_of(&response, header::CONTENT_SECURITY_POLICY)
                    .contains("default-src 'self'")
            );
            let body = String::from_utf8(body_of(response).await).unwrap();
            assert!(body.contains(&format!("/static/{script}")), "{route}");
            assert!(body.contains("/static/directives.css"), "{route}");
        }
    }

    #[tokio::test]
    async fn static_files_have_their_content_types() {
        let cases = [
            ("rootcast-client.js", "text/javascript; charset=utf-8"),
            ("live-state.js", "text/javascript; charset=utf-8"),
            ("i18n.js", "text/javascript; charset=utf-8"),
            ("rootcast.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ];
        for (name, content_type) in cases {
            let response = get(&format!("/static/{name}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type);
            assert_eq!(
                header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
                "nosniff"
            );
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
            assert!(
                response
                    .headers()
                    .get(header::CONTENT_SECURITY_POLICY)
                    .is_none()
            );
            let on_disk =
                std::fs::read(format!("{}/static/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            assert_eq!(body_of(response).await, on_disk, "{name}");
        }
    }

    #[tokio::test]
    async fn etags_are_stable_and_differ_between_files() {
        let first = header_of(&get("/static/rootcast-client.js").await, header::ETAG).to_owned();
        let again = header_of(&get("/static/rootcast-client.js").await, header::ETAG).to_owned();
        let other = header_of(&get("/static/rootcast.css").await, header::ETAG).to_owned();
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[tokio::test]
    async fn matching_if_none_match_gets_304_without_body() {
        for uri in ["/", "/static/rootcast.css"] {
            let etag = header_of(&get(uri).await, header::ETAG).to_owned();
            for condition in [
                etag.clone(),
                format!("W/{etag}"),
                format!("\"x\", {etag}"),
                "*".into(),
            ] {
                let response = send(Method::GET, uri, Some(&condition)).await;
                assert_eq!(
                    response.status(),
                    StatusCode::NOT_MODIFIED,
                    "{uri} {condition}"
                );
                assert_eq!(header_of(&response, header::ETAG), etag);
                assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
                assert!(body_of(response).await.is_empty());
            }
        }
    }

    #[tokio::test]
    async fn stale_if_none_match_gets_the_file() {
        let response = send(
            Method::GET,
            "/static/rootcast.css",
            Some("\"0000000000000000\""),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!body_of(response).await.is_empty());
    }

    #[tokio::test]
    async fn unknown_static_file_is_404_with_a_short_text() {
        for uri in [
            "/static/nope.js",
            "/static/../Cargo.toml",
            "/static/sub/dir.css",
        ] {
            let response = get(uri).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                "text/plain; charset=utf-8"
            );
            let body = String::from_utf8(body_of(response).await).unwrap();
            assert!(body.starts_with("not found: /static/"), "{body}");
            assert!(body.len() < 200);
        }
        let long = format!("/static/{}", "a".repeat(5000));
        let body = body_of(get(&long).await).await;
        assert!(body.len() < 200);
    }

    #[tokio::test]
    async fn head_has_headers_and_no_body_and_post_is_refused() {
        let response = send(Method::HEAD, "/static/rootcast-client.js", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key(header::ETAG));
        assert!(body_of(response).await.is_empty());

        let response = send(Method::POST, "/static/rootcast-client.js", None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn merges_with_other_routes() {
        let app = Router::new()
            .route("/api/info", axum::routing::get(|| async { "hub" }))
            .merge(router());
        let response = app
            .oneshot(Request::get("/api/info").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(body_of(response).await, b"hub");
    }
}
