//! Checks on an SDP offer before str0m sees it, and a summary of its media sections.
//!
//! str0m parses and negotiates the offer; this module only decides the HTTP status of the
//! offers that must not get that far and pulls out what the driver needs that str0m does not
//! hand back after `accept_offer` (the list of mids with their kinds and simulcast RIDs):
//!
//! - **400** ([`SdpProblem::Malformed`]): not text, no `v=0`, a line that is not `x=...`,
//!   too many lines or sections, an overlong line, an `m=` line that does not parse, a media
//!   section without `a=mid`, a direction that does not suit the endpoint (WHIP offers must
//!   send, WHEP offers must receive), no audio or video at all.
//! - **422** ([`SdpProblem::NoSupportedCodec`]): audio/video sections, but none offers Opus,
//!   VP8 or H.264.
//!
//! The parser is deliberately small and total: it never indexes out of bounds and never
//! panics on any input (the `whip_bad_input` test feeds it hundreds of mutated offers).

/// Most lines an offer may have.
pub const MAX_LINES: usize = 2_000;
/// Longest line.
pub const MAX_LINE_LEN: usize = 4_096;
/// Most media sections (m-lines).
pub const MAX_SECTIONS: usize = 16;

/// The codecs the relay forwards (lower case, as in `a=rtpmap`).
pub const SUPPORTED_CODECS: [&str; 3] = ["opus", "vp8", "h264"];

/// Which endpoint the offer was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferRole {
    /// WHIP: the offerer sends media.
    Publish,
    /// WHEP: the offerer receives media.
    View,
}

/// The kind of a media section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `m=audio`
    Audio,
    /// `m=video`
    Video,
    /// `m=application` (data channels) or anything else; ignored by the relay.
    Other,
}

/// The offerer's direction of one section (`a=sendrecv` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferDirection {
    /// `a=sendrecv`
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl OfferDirection {
    fn sends(self) -> bool {
        matches!(self, OfferDirection::SendRecv | OfferDirection::SendOnly)
    }

    fn receives(self) -> bool {
        matches!(self, OfferDirection::SendRecv | OfferDirection::RecvOnly)
    }
}

/// One media section of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Audio, video or other.
    pub kind: SectionKind,
    /// `a=mid` value.
    pub mid: String,
    /// The offerer's direction.
    pub direction: OfferDirection,
    /// Port 0 in the `m=` line: the section is rejected/disabled.
    pub disabled: bool,
    /// Codec names from `a=rtpmap`, lower case, in offer order.
    pub codecs: Vec<String>,
    /// `a=rtpmap` payload types with their lower-case codec names, in offer order.
    pub rtpmap: Vec<(u8, String)>,
    /// RIDs of `a=simulcast:send`, in offer order (empty without simulcast).
    pub simulcast_send: Vec<String>,
}

impl MediaSection {
    /// Whether the section offers at least one codec the relay forwards.
    pub fn has_supported_codec(&self) -> bool {
        self.codecs
            .iter()
            .any(|c| SUPPORTED_CODECS.contains(&c.as_str()))
    }

    fn is_av(&self) -> bool {
        matches!(self.kind, SectionKind::Audio | SectionKind::Video)
    }
}

/// What the driver needs to know about an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// The media sections, in order.
    pub sections: Vec<MediaSection>,
}

impl OfferSummary {
    /// The enabled audio/video sections that carry media in the role's direction and offer a
    /// supported codec.
    pub fn usable(&self, role: OfferRole) -> impl Iterator<Item = &MediaSection> {
        self.sections.iter().filter(move |s| {
            s.is_av()
                && !s.disabled
                && s.has_supported_codec()
                && match role {
                    OfferRole::Publish => s.direction.sends(),
                    OfferRole::View => s.direction.receives(),
                }
        })
    }
}

/// Why an offer is refused before negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpProblem {
    /// Not an SDP offer the relay can read (HTTP 400).
    Malformed(String),
    /// No Opus, VP8 or H.264 in any audio/video section (HTTP 422).
    NoSupportedCodec,
}

impl std::fmt::Display for SdpProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpProblem::Malformed(why) => write!(f, "malformed SDP offer: {why}"),
            SdpProblem::NoSupportedCodec => {
                write!(f, "the offer has no supported codec (Opus, VP8, H.264)")
            }
        }
    }
}

fn bad(why: impl Into<String>) -> SdpProblem {
    SdpProblem::Malformed(why.into())
}

/// Reads the offer's lines, checks them and summarises the media sections.
pub fn check_offer(sdp: &str, role: OfferRole) -> Result<OfferSummary, SdpProblem> {
    let mut lines = sdp.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    match lines.next() {
        Some("v=0") => {}
        _ => return Err(bad("it must start with \"v=0\"")),
    }
    let mut sections: Vec<MediaSection> = Vec::new();
    let mut session_direction = None;
    for (n, line) in lines.enumerate() {
        if n + 2 > MAX_LINES {
            return Err(bad(format!("more than {MAX_LINES} lines")));
        }
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_LEN {
            return Err(bad(format!(
                "line {} is longer than {MAX_LINE_LEN} bytes",
                n + 2
            )));
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || !bytes[0].is_ascii_lowercase() || bytes[1] != b'=' {
            return Err(bad(format!("line {} is not of the form x=value", n + 2)));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad(format!("line {} has control characters", n + 2)));
        }
        let value = &line[2..];
        match bytes[0] {
            b'm' => {
                if sections.len() == MAX_SECTIONS {
                    return Err(bad(format!("more than {MAX_SECTIONS} media sections")));
                }
                let mut parts = value.split(' ');
                let media = parts.next().unwrap_or("");
                let port = parts.next().unwrap_or("");
                let proto = parts.next().unwrap_or("");
                let port = port.split('/').next().unwrap_or("");
                if media.is_empty() || proto.is_empty() || port.parse::<u16>().is_err() {
                    return Err(bad(format!("m-line {} does not parse", sections.len() + 1)));
                }
                sections.push(MediaSection {
                    kind: match media {
                        "audio" => SectionKind::Audio,
                        "video" => SectionKind::Video,
                        _ => SectionKind::Other,
                    },
                    mid: String::new(),
                    direction: session_direction.unwrap_or(OfferDirection::SendRecv),
                    disabled: port == "0",
                    codecs: Vec::new(),
                    rtpmap: Vec::new(),
                    simulcast_send: Vec::new(),
                });
            }
            b'a' => {
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                let direction = match name {
                    "sendrecv" => Some(OfferDirection::SendRecv),
                    "sendonly" => Some(OfferDirection::SendOnly),
                    "recvonly" => Some(OfferDirection::RecvOnly),
                    "inactive" => Some(OfferDirection::Inactive),
                    _ => None,
                };
                let Some(section) = sections.last_mut() else {
                    if direction.is_some() {
                        session_direction = direction;
                    }
                    continue;
                };
                if let Some(d) = direction {
                    section.direction = d;
                }
                match name {
                    "mid" => {
                        if arg.is_empty() || arg.len() > 16 || arg.contains(char::is_whitespace) {
                            return Err(bad(format!("a=mid \"{arg}\" is empty or too long")));
                        }
                        section.mid = arg.to_string();
                    }
                    "rtpmap" => {
                        // a=rtpmap:<pt> <name>/<clock>[/<channels>]
                        let (pt, rest) = arg.split_once(' ').unwrap_or((arg, ""));
                        let name = rest.split('/').next().unwrap_or("");
                        let pt = match pt.parse::<u8>() {
                            Ok(pt) if pt <= 127 && !name.is_empty() => pt,
                            _ => return Err(bad(format!("a=rtpmap:{arg} does not parse"))),
                        };
                        section.codecs.push(name.to_ascii_lowercase());
                        section.rtpmap.push((pt, name.to_ascii_lowercase()));
                    }
                    "simulcast" => {
                        // a=simulcast:send q;h;f [recv ...]
                        let mut words = arg.split(' ');
                        while let Some(dir) = words.next() {
                            let list = words.next().unwrap_or("");
                            if dir == "send" {
                                section.simulcast_send = list
                                    .split([';', ','])
                                    .map(|r| r.trim_start_matches('~').to_string())
                                    .filter(|r| !r.is_empty())
                                    .collect();
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if sections.iter().any(|s| s.mid.is_empty()) {
        return Err(bad("every media section needs an a=mid (BUNDLE)"));
    }
    let av: Vec<&MediaSection> = sections
        .iter()
        .filter(|s| s.is_av() && !s.disabled)
        .collect();
    if av.is_empty() {
        return Err(bad("the offer has no audio or video section"));
    }
    if !av.iter().any(|s| s.has_supported_codec()) {
        return Err(SdpProblem::NoSupportedCodec);
    }
    let summary = OfferSummary { sections };
    if summary.usable(role).next().is_none() {
        return Err(bad(match role {
            OfferRole::Publish => "a WHIP offer must send audio or video (sendonly)",
            OfferRole::View => "a WHEP offer must receive audio or video (recvonly)",
        }));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 VP9/90000\r\na=simulcast:send q;h;~f\r\n";

    #[test]
    fn summarises_a_publisher_offer() {
        let s = check_offer(OFFER, OfferRole::Publish).unwrap();
        assert_eq!(s.sections.len(), 2);
        assert_eq!(s.sections[1].codecs, ["vp8", "vp9"]);
        assert_eq!(s.sections[1].simulcast_send, ["q", "h", "f"]);
        assert_eq!(s.usable(OfferRole::Publish).count(), 2);
        assert!(check_offer(OFFER, OfferRole::View).is_err());
    }

    #[test]
    fn refuses_unsupported_codecs_with_422() {
        let vp9 = OFFER.replace("opus", "ISAC").replace("VP8", "AV1");
        assert_eq!(
            check_offer(&vp9, OfferRole::Publish),
            Err(SdpProblem::NoSupportedCodec)
        );
    }

    #[test]
    fn never_panics_on_prefixes() {
        for end in 0..OFFER.len() {
            if OFFER.is_char_boundary(end) {
                let _ = check_offer(&OFFER[..end], OfferRole::Publish);
            }
        }
    }
}
