//! The catalog of embedded files: which files are compiled into the binary, at which URL
//! each one is served, and the response headers that are worked out once per file.
//!
//! To add a file, put it under `web/pages/` or `web/static/` and add one line to [`PAGES`]
//! or [`STATIC_FILES`]. A unit test fails when a file in those folders is not listed here,
//! and another when a page or script refers to a `/static/` file or a `./module.js` that is
//! not listed.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderValue;

/// A file compiled into the binary with `include_bytes!`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmbeddedFile {
    /// File name inside its folder (`web/pages/` or `web/static/`); for a static file this
    /// is also its URL below `/static/`.
    pub name: &'static str,
    pub bytes: &'static [u8],
}

/// Embeds `web/<folder>/<name>`. Cargo rebuilds the crate when the file changes.
macro_rules! embed {
    ($folder:literal, $name:literal) => {
        EmbeddedFile {
            name: $name,
            bytes: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/",
                $folder,
                "/",
                $name
            )),
        }
    };
}

/// Pages: HTML documents served at a route of their own (`route`, file in `web/pages/`).
pub(crate) const PAGES: &[(&str, EmbeddedFile)] = &[
    ("/", embed!("pages", "live-state.html")),
    ("/publish", embed!("pages", "publish.html")),
    ("/watch", embed!("pages", "watch.html")),
    ("/console", embed!("pages", "console.html")),
    ("/inbox", embed!("pages", "inbox.html")),
    ("/meeting", embed!("pages", "meeting.html")),
    ("/tv", embed!("pages", "tv.html")),
    ("/replay", embed!("pages", "replay.html")),
    ("/meeting-console", embed!("pages", "meeting-console.html")),
    ("/expert", embed!("pages", "expert.html")),
    ("/meeting-report", embed!("pages", "meeting-report.html")),
];

/// Files served at `/static/<name>` (scripts, styles, images), from `web/static/`.
pub(crate) const STATIC_FILES: &[EmbeddedFile] = &[
    embed!("static", "rootcast-client.js"),
    embed!("static", "i18n.js"),
    embed!("static", "live-state.js"),
    embed!("static", "rootcast.css"),
    embed!("static", "favicon.svg"),
    embed!("static", "whip-client.js"),
    embed!("static", "publish.js"),
    embed!("static", "watch.js"),
    embed!("static", "relay.css"),
    embed!("static", "api.js"),
    embed!("static", "markdown.js"),
    embed!("static", "org-tree.js"),
    embed!("static", "unit-picker.js"),
    embed!("static", "directive-text.js"),
    embed!("static", "session-ui.js"),
    embed!("static", "console.js"),
    embed!("static", "inbox.js"),
    embed!("static", "directives.css"),
    embed!("static", "meeting-live.js"),
    embed!("static", "meeting.js"),
    embed!("static", "meeting.css"),
    embed!("static", "tv.js"),
    embed!("static", "tv.css"),
    embed!("static", "replay.js"),
    embed!("static", "replay.css"),
    embed!("static", "meeting-console.js"),
    embed!("static", "meeting-console.css"),
    embed!("static", "expert.js"),
    embed!("static", "meeting-report.js"),
];

/// `Cache-Control` for every file: the browser keeps a copy but asks again each time, and
/// the answer is a body-less 304 while the `ETag` still matches. Without a build step the
/// URLs carry no content hash, so a long `max-age` would keep stale modules after an
/// upgrade and could mix module versions on one page.
pub(crate) const CACHE_CONTROL: &str = "no-cache";

/// `Content-Security-Policy` sent with pages: scripts, styles and connections only to this
/// origin (`'self'` covers `ws:`/`wss:` to the same host), no plugins, no framing by others.
pub(crate) const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// A file ready to be served: its bytes and the headers computed once.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub bytes: &'static [u8],
    pub content_type: HeaderValue,
    /// Strong entity tag: `"` + 16 hex digits of the FNV-1a 64-bit hash of the bytes + `"`.
    pub etag: HeaderValue,
    /// Pages also get a `Content-Security-Policy`.
    pub is_page: bool,
}

impl Prepared {
    fn new(file: &EmbeddedFile, is_page: bool) -> Self {
        let etag = format!("\"{:016x}\"", fnv1a_64(file.bytes));
        Prepared {
            bytes: file.bytes,
            content_type: HeaderValue::from_static(content_type_for(file.name)),
            // Quotes and hex digits are always a valid header value.
            etag: HeaderValue::from_str(&etag).expect("an entity tag of hex digits is ASCII"),
            is_page,
        }
    }
}

/// Every embedded file, prepared on first use.
pub(crate) struct Catalog {
    pub pages: Vec<(&'static str, Prepared)>,
    pub static_files: HashMap<&'static str, Prepared>,
}

pub(crate) static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    pages: PAGES
        .iter()
        .map(|(route, file)| (*route, Prepared::new(file, true)))
        .collect(),
    static_files: STATIC_FILES
        .iter()
        .map(|file| (file.name, Prepared::new(file, false)))
        .collect(),
});

/// The `Content-Type` for a file name, by its extension.
pub(crate) fn content_type_for(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits. Not a cryptographic hash: an entity tag only has to change when the
/// content changes, and a chance collision costs at worst one stale cached file. It keeps
/// the crate free of a hashing dependency and gives the same tag on every node.
pub(crate) fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::Path;

    #[test]
    fn fnv1a_matches_published_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_file_in_the_folders_is_listed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let listed_pages: HashSet<&str> = PAGES.iter().map(|(_, f)| f.name).collect();
        let listed_static: HashSet<&str> = STATIC_FILES.iter().map(|f| f.name).collect();
        for (folder, listed) in [("pages", &listed_pages), ("static", &listed_static)] {
            let mut on_disk = HashSet::new();
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                assert!(
                    listed.contains(name.as_str()),
                    "web/{folder}/{name} is not listed in web/src/catalog.rs"
                );
                on_disk.insert(name);
            }
            assert_eq!(
                on_disk.len(),
                listed.len(),
                "duplicate entries in web/{folder}"
            );
        }
    }

    #[test]
    fn every_file_has_a_known_content_type() {
        let files = PAGES.iter().map(|(_, f)| f).chain(STATIC_FILES);
        for file in files {
            assert_ne!(
                content_type_for(file.name),
                "application/octet-stream",
                "{} has no content type",
                file.name
            );
        }
    }

    #[test]
    fn references_between_files_resolve() {
        let listed: HashSet<&str> = STATIC_FILES.iter().map(|f| f.name).collect();
        let texts = PAGES.iter().map(|(_, f)| f).chain(STATIC_FILES);
        let mut checked = 0;
        for file in texts {
            let Ok(text) = std::str::from_utf8(file.bytes) else {
                continue;
            };
            // `/static/name` in pages and styles, `from "./name"` and `import("./name")` in
            // modules (modules live side by side under /static/).
            for marker in ["/static/", "from \"./", "import(\"./"] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                        .unwrap_or(rest.len());
                    let name = &rest[..end];
                    if name.is_empty() {
                        continue;
                    }
                    assert!(
                        listed.contains(name),
                        "{} refers to {name:?}, which is not a listed static file",
                        file.name
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 4, "expected the page to refer to its assets");
    }
}
