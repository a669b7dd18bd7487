//! `application/trickle-ice-sdpfrag` (RFC 8840 §9, used by WHIP/WHEP `PATCH`, RFC 9725
//! §4.3): parsing a client's fragment, building the relay's answer fragment for an ICE
//! restart, and rewriting a stored offer for the restart. Text in, text out: no sockets.
//!
//! A fragment carries the ICE credentials of the generation it belongs to (`a=ice-ufrag`,
//! `a=ice-pwd`, at session or media level), the candidates (`a=candidate:`), and
//! `a=end-of-candidates`, under the `m=`/`a=mid` of the bundle's first section. Other
//! attributes are allowed and ignored.

use str0m::Candidate;

/// Most candidates taken from one fragment (a browser gathers a handful per interface).
pub const MAX_FRAGMENT_CANDIDATES: usize = 64;

/// A parsed client fragment.
#[derive(Debug, Clone, Default)]
pub struct Fragment {
    /// `a=ice-ufrag`, if present.
    pub ufrag: Option<String>,
    /// `a=ice-pwd`, if present.
    pub pwd: Option<String>,
    /// The candidates that name an IP address (mDNS `.local` names are skipped: the relay
    /// cannot resolve them and, as ICE lite, does not need them).
    pub candidates: Vec<Candidate>,
    /// Candidate lines skipped (host names).
    pub skipped: usize,
    /// `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

/// Why a fragment is refused (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentError(pub String);

impl std::fmt::Display for FragmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed trickle-ice-sdpfrag: {}", self.0)
    }
}

fn bad(why: impl Into<String>) -> FragmentError {
    FragmentError(why.into())
}

/// `ice-char` of RFC 8839: ALPHA / DIGIT / "+" / "/".
fn ice_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Parses a client's fragment. Refuses: non-SDP lines, two different ufrags or pwds, a
/// ufrag without a pwd (or the reverse), credentials outside RFC 8839's syntax (ufrag 4–256,
/// pwd 22–256 ice-chars), a candidate line that does not parse, more than
/// [`MAX_FRAGMENT_CANDIDATES`] candidates, and a fragment with nothing in it.
pub fn parse_fragment(text: &str) -> Result<Fragment, FragmentError> {
    let mut f = Fragment::default();
    let mut lines = 0;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let b = line.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_lowercase() || b[1] != b'=' {
            return Err(bad(format!("not an SDP line: {:?}", truncate(line))));
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue; // m=, c=, … lines are context only.
        };
        if let Some(v) = attr.strip_prefix("ice-ufrag:") {
            set_once(&mut f.ufrag, v, "ice-ufrag")?;
        } else if let Some(v) = attr.strip_prefix("ice-pwd:") {
            set_once(&mut f.pwd, v, "ice-pwd")?;
        } else if attr.starts_with("candidate:") {
            if f.candidates.len() + f.skipped >= MAX_FRAGMENT_CANDIDATES {
                return Err(bad(format!(
                    "more than {MAX_FRAGMENT_CANDIDATES} candidates"
                )));
            }
            let address = attr.split_whitespace().nth(4).unwrap_or("");
            if !address.is_empty() && address.parse::<std::net::IpAddr>().is_err() {
                // A host name (mDNS): not an error, but nothing to use.
                f.skipped += 1;
                continue;
            }
            match Candidate::from_sdp_string(attr) {
                Ok(c) => f.candidates.push(c),
                Err(e) => return Err(bad(format!("bad candidate: {e}"))),
            }
        } else if attr == "end-of-candidates" {
            f.end_of_candidates = true;
        }
    }
    if lines == 0 {
        return Err(bad("the fragment is empty"));
    }
    match (&f.ufrag, &f.pwd) {
        (Some(u), Some(p)) => {
            if !(4..=256).contains(&u.len()) || !ice_chars(u) {
                return Err(bad(
                    "ice-ufrag must be 4 to 256 characters of A-Z a-z 0-9 + /",
                ));
            }
            if !(22..=256).contains(&p.len()) || !ice_chars(p) {
                return Err(bad(
                    "ice-pwd must be 22 to 256 characters of A-Z a-z 0-9 + /",
                ));
            }
        }
        (None, None) => {}
        _ => return Err(bad("ice-ufrag and ice-pwd come together")),
    }
    Ok(f)
}

fn set_once(slot: &mut Option<String>, value: &str, name: &str) -> Result<(), FragmentError> {
    let value = value.trim();
    match slot {
        Some(old) if old != value => Err(bad(format!("two different {name} values"))),
        _ => {
            *slot = Some(value.to_owned());
            Ok(())
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The `a=ice-ufrag` and `a=ice-pwd` of an SDP (the first of each), if both are present.
pub fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let mut ufrag = None;
    let mut pwd = None;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if ufrag.is_none() {
            ufrag = line
                .strip_prefix("a=ice-ufrag:")
                .map(|v| v.trim().to_owned());
        }
        if pwd.is_none() {
            pwd = line.strip_prefix("a=ice-pwd:").map(|v| v.trim().to_owned());
        }
    }
    Some((ufrag?, pwd?))
}

/// The offer as it would be for an ICE restart: every `a=ice-ufrag`/`a=ice-pwd` replaced
/// by the new credentials, the old candidates and `a=end-of-candidates` dropped. Everything
/// else (media, codecs, fingerprint) stays: RFC 9725 §4.3.2 — an ICE restart over PATCH
/// renegotiates nothing but ICE.
pub fn restart_offer(offer: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// The relay's fragment answering an ICE restart, taken from its new SDP answer:
/// `a=ice-lite` (when the answer has it), the new `a=ice-ufrag`/`a=ice-pwd`, the first
/// media section's `m=` and `a=mid`, its candidates, and `a=end-of-candidates`.
pub fn answer_fragment(answer: &str) -> String {
    let mut ice_lite = false;
    let (mut ufrag, mut pwd, mut m_line, mut mid) = (None, None, None, None);
    let mut candidates = Vec::new();
    let mut section = 0;
    for line in answer.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("m=") {
            section += 1;
            if section == 1 {
                m_line = Some(line);
            }
            continue;
        }
        if line == "a=ice-lite" {
            ice_lite = true;
        } else if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            ufrag.get_or_insert(v);
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            pwd.get_or_insert(v);
        } else if section == 1 && line.starts_with("a=mid:") {
            mid.get_or_insert(line);
        } else if section <= 1 && line.starts_with("a=candidate:") {
            candidates.push(line);
        }
    }
    let mut out = String::new();
    let mut push = |l: &str| {
        out.push_str(l);
        out.push_str("\r\n");
    };
    if ice_lite {
        push("a=ice-lite");
    }
    if let Some(u) = ufrag {
        push(&format!("a=ice-ufrag:{u}"));
    }
    if let Some(p) = pwd {
        push(&format!("a=ice-pwd:{p}"));
    }
    if let Some(m) = m_line {
        push(m);
    }
    if let Some(m) = mid {
        push(m);
    }
    for c in candidates {
        push(c);
    }
    push("a=end-of-candidates");
    out
}

/// Whether `If-Match` (its raw value) matches the current entity tag. `*` matches any
/// existing session; otherwise a comma-separated list of entity tags compared strongly
/// (a weak `W/"…"` tag never matches, RFC 9110 §13.1.1).
pub fn if_match(header: &str, current: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.starts_with("W/") && tag == current))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAG: &str = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
        m=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
        a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
        a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n\
        a=candidate:473322822 1 udp 1686052607 203.0.113.3 32012 typ srflx raddr 192.0.2.1 rport 61764 generation 0 ufrag EsAw\r\n\
        a=candidate:2154773085 1 udp 2122194687 3f6a5f5c-8e1a-4e63-b6a9-6b4fbb1b4d2a.local 61766 typ host generation 0\r\n\
        a=end-of-candidates\r\n";

    #[test]
    fn parses_the_rfc_example() {
        let f = parse_fragment(FRAG).unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert_eq!(f.candidates.len(), 3);
        assert_eq!(f.skipped, 1);
        assert!(f.end_of_candidates);
        assert_eq!(f.candidates[0].addr(), "192.0.2.1:61764".parse().unwrap());
    }

    #[test]
    fn end_of_candidates_alone_is_a_fragment() {
        let f = parse_fragment("a=end-of-candidates\n").unwrap();
        assert!(f.end_of_candidates && f.candidates.is_empty() && f.ufrag.is_none());
    }

    #[test]
    fn refuses_malformed_fragments() {
        for text in [
            "",
            "\r\n\r\n",
            "hello",
            "a=ice-ufrag:abcd\r\n",
            "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
            "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
            "a=ice-ufrag:ab\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
            "a=ice-ufrag:abcd\r\na=ice-pwd:short\r\n",
            "a=ice-ufrag:ab\"cd\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
            "a=candidate:1 1 udp notanumber 192.0.2.1 1 typ host\r\n",
            "a=candidate:1 1 xyz 1 192.0.2.1 1 typ host\r\n",
            "a=candidate:\r\n",
        ] {
            assert!(parse_fragment(text).is_err(), "{text:?}");
        }
        let many = "a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n".repeat(65);
        assert!(parse_fragment(&many).is_err());
    }

    #[test]
    fn restart_offer_swaps_credentials_and_drops_candidates() {
        let offer = "v=0\r\na=ice-ufrag:old1\r\na=ice-pwd:oldpasswordoldpassword\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=ice-ufrag:old1\r\na=candidate:1 1 udp 1 127.0.0.1 5 typ host\r\na=end-of-candidates\r\na=mid:0\r\n";
        let out = restart_offer(offer, "new1", "newpasswordnewpassword");
        assert!(!out.contains("old"));
        assert_eq!(out.matches("a=ice-ufrag:new1\r\n").count(), 2);
        assert!(out.contains("a=ice-pwd:newpasswordnewpassword\r\n"));
        assert!(!out.contains("candidate"));
        assert!(out.contains("a=mid:0\r\n"));
        assert_eq!(
            ice_credentials(&out),
            Some(("new1".into(), "newpasswordnewpassword".into()))
        );
    }

    #[test]
    fn answer_fragment_takes_the_first_section() {
        let answer = "v=0\r\na=ice-lite\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=ice-ufrag:uf12\r\n\
            a=ice-pwd:pw\r\na=candidate:1 1 udp 2130706175 127.0.0.1 4000 typ host\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=candidate:1 1 udp 2130706175 127.0.0.1 4000 typ host\r\n";
        assert_eq!(
            answer_fragment(answer),
            "a=ice-lite\r\na=ice-ufrag:uf12\r\na=ice-pwd:pw\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n\
             a=candidate:1 1 udp 2130706175 127.0.0.1 4000 typ host\r\na=end-of-candidates\r\n"
        );
    }

    #[test]
    fn if_match_is_strong_and_accepts_star_and_lists() {
        assert!(if_match("\"abc\"", "\"abc\""));
        assert!(if_match("*", "\"abc\""));
        assert!(if_match("\"x\", \"abc\"", "\"abc\""));
        assert!(!if_match("W/\"abc\"", "\"abc\""));
        assert!(!if_match("\"abd\"", "\"abc\""));
        assert!(!if_match("abc", "\"abc\""));
        assert!(!if_match("", "\"abc\""));
    }
}
