//! Scenario tests of `StreamForwarder` in simulated time.

mod common;

use common::{Sim, assert_continuous, tag_of, ts_delta};
use rootcast_relay::{
    ForwardError, KeyframeKind, KeyframeRequest, LayerId, MediaKind, RequestOutcome, ViewerId,
    ViewerPreference,
};

const LOW: LayerId = LayerId::LOW;
const MID: LayerId = LayerId::MID;
const HIGH: LayerId = LayerId::HIGH;
const ALL: [LayerId; 3] = LayerId::ALL;

fn pli(layer: LayerId) -> KeyframeRequest {
    KeyframeRequest {
        layer,
        kind: KeyframeKind::Pli,
    }
}

#[test]
fn a_joining_viewer_gets_an_immediate_keyframe_request_and_starts_at_the_keyframe() {
    let mut s = Sim::new(1);
    s.answer_requests = false;
    s.frame(LOW, true);
    s.run(200, &[LOW]);
    assert!(s.requests.is_empty(), "no viewer, no request");

    let v = s.add(1, ViewerPreference::Auto, None);
    assert_eq!(s.requests_since(200), vec![pli(LOW)]);
    let status = s.f.viewer_status(v).unwrap();
    assert_eq!(status.target_layer, Some(LOW));
    assert!(status.waiting_for_keyframe);

    // Deltas are not forwarded; audio starts at once.
    s.run(300, &[LOW]);
    assert!(s.video_of(v).is_empty());
    let audio = s.audio_of(v);
    assert!(!audio.is_empty());
    assert_continuous(&audio);

    // The publisher's keyframe arrives: video starts with it.
    s.answer_requests = true;
    s.run(400, &[LOW]);
    let video = s.video_of(v);
    assert!(!video.is_empty());
    assert!(rootcast_relay::packet::vp8_is_keyframe_start(
        &video[0].payload
    ));
    assert_continuous(&video);
    let status = s.f.viewer_status(v).unwrap();
    assert_eq!(status.current_layer, Some(LOW));
    assert!(!status.waiting_for_keyframe);
    // Only one request went out in all that time.
    assert_eq!(s.requests.len(), 1);
}

#[test]
fn the_first_video_packet_uses_the_viewers_bases() {
    let mut s = Sim::new(2);
    s.run(100, &[LOW]);
    let opts = common::options(&mut s.rng, ViewerPreference::Auto, None);
    let now = s.now();
    s.f.add_viewer(now, ViewerId(9), opts).unwrap();
    s.run(300, &[LOW]);
    let video = s.video_of(ViewerId(9));
    assert_eq!(video[0].seq, u64::from(opts.video.seq));
    assert_eq!(video[0].timestamp, opts.video.timestamp);
    let audio = s.audio_of(ViewerId(9));
    assert_eq!(audio[0].seq, u64::from(opts.audio.seq));
    assert_eq!(audio[0].timestamp, opts.audio.timestamp);
}

#[test]
fn a_second_join_inside_the_window_is_deferred_not_lost() {
    let mut s = Sim::new(3);
    s.answer_requests = false;
    s.run(100, &[LOW]);
    s.add(1, ViewerPreference::Auto, None);
    assert_eq!(s.requests_since(0), vec![pli(LOW)]);
    s.run(400, &[LOW]);
    s.add(2, ViewerPreference::Auto, None);
    assert_eq!(s.requests.len(), 1, "throttled: nothing new yet");
    assert!(s.f.poll_timeout().unwrap() <= common::t(s.start, 1100));
    s.run(1099, &[LOW]);
    assert_eq!(s.requests.len(), 1);
    s.run(1100, &[LOW]);
    assert_eq!(
        s.requests_since(1100),
        vec![pli(LOW)],
        "the deferred request went out"
    );
}

#[test]
fn a_keyframe_inside_the_window_serves_the_deferred_join() {
    let mut s = Sim::new(4);
    s.answer_requests = false;
    s.run(100, &[LOW]);
    let a = s.add(1, ViewerPreference::Auto, None);
    s.run(400, &[LOW]);
    let b = s.add(2, ViewerPreference::Auto, None);
    // The publisher answers the first request late, inside the window.
    s.run(600, &[LOW]);
    s.frame(LOW, true);
    assert!(!s.video_of(a).is_empty());
    assert!(!s.video_of(b).is_empty());
    s.run(3000, &[LOW]);
    assert_eq!(
        s.requests.len(),
        1,
        "the keyframe cancelled the deferred request"
    );
}

#[test]
fn many_viewers_plis_in_one_second_become_one_request() {
    let mut s = Sim::new(5);
    for id in 0..50 {
        s.add(id, ViewerPreference::Auto, None);
    }
    s.run(100, &[LOW]);
    s.run(2000, &[LOW]);
    let before = s.requests.len();
    // A burst of PLIs (one upstream loss seen by everyone) within 100 ms; the publisher's
    // keyframe arrives 150 ms after the first request.
    for id in 0..50u64 {
        s.ms = 2000 + id * 2;
        let now = s.now();
        s.f.handle_viewer_keyframe_request(now, ViewerId(id), KeyframeKind::Pli)
            .unwrap();
        s.timeouts();
    }
    s.ms = 2150;
    s.frame(LOW, false);
    s.run(4000, &[LOW]);
    assert_eq!(s.requests.len() - before, 1);
    assert_eq!(s.f.counters().keyframe_requests_in, 50);
}

#[test]
fn plis_without_an_answer_are_limited_to_one_per_second() {
    let mut s = Sim::new(6);
    s.add(1, ViewerPreference::Auto, None);
    s.run(200, &[LOW]);
    s.answer_requests = false;
    let before = s.requests.len();
    for step in 0..300u64 {
        s.ms = 1000 + step * 10;
        let now = s.now();
        s.f.handle_viewer_keyframe_request(now, ViewerId(1), KeyframeKind::Pli)
            .unwrap();
        s.timeouts();
    }
    let sent: Vec<u64> = s.requests[before..].iter().map(|(ms, _)| *ms).collect();
    assert!(sent.len() <= 4, "{sent:?}");
    for pair in sent.windows(2) {
        assert!(pair[1] - pair[0] >= 1000, "{sent:?}");
    }
}

#[test]
fn an_upgrade_waits_for_the_hold_and_a_keyframe_and_stays_continuous() {
    let mut s = Sim::new(7);
    s.run(100, &ALL);
    let v = s.add(1, ViewerPreference::Auto, Some(600_000));
    assert_eq!(s.f.viewer_status(v).unwrap().target_layer, Some(MID));
    s.run(1500, &ALL);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(MID));

    s.answer_requests = false;
    let now = s.now();
    s.f.set_viewer_estimate(now, v, 3_000_000).unwrap();
    s.run(2400, &ALL);
    assert_eq!(
        s.f.viewer_status(v).unwrap().target_layer,
        Some(MID),
        "hold"
    );
    s.run(2600, &ALL);
    let status = s.f.viewer_status(v).unwrap();
    assert_eq!(status.target_layer, Some(HIGH));
    assert_eq!(
        status.current_layer,
        Some(MID),
        "no keyframe yet: MID keeps flowing"
    );
    assert!(s.requests_since(2400).contains(&pli(HIGH)));

    s.run(3000, &ALL);
    s.answer_requests = true;
    s.run(3500, &ALL);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(HIGH));

    let video = s.video_of(v);
    assert_continuous(&video);
    let high_ssrc = s.p.video[HIGH.index()].ssrc;
    let mid_ssrc = s.p.video[MID.index()].ssrc;
    let first_high = video
        .iter()
        .position(|w| tag_of(&w.payload).ssrc == high_ssrc)
        .unwrap();
    assert!(rootcast_relay::packet::vp8_is_keyframe_start(
        &video[first_high].payload
    ));
    assert!(
        video[..first_high]
            .iter()
            .all(|w| tag_of(&w.payload).ssrc == mid_ssrc)
    );
    assert!(
        video[first_high..]
            .iter()
            .all(|w| tag_of(&w.payload).ssrc == high_ssrc)
    );
    // The timestamp moved on by about the frame interval at the switch.
    let step = ts_delta(video[first_high].timestamp, video[first_high - 1].timestamp);
    assert!((1..=90 * 40).contains(&step), "{step}");
    assert_eq!(s.f.counters().layer_switches, 2);
}

#[test]
fn a_paused_or_idle_layer_falls_back_at_once() {
    let mut s = Sim::new(8);
    s.run(100, &ALL);
    let v = s.add(1, ViewerPreference::Auto, Some(5_000_000));
    s.run(1000, &ALL);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(HIGH));

    let now = s.now();
    s.f.handle_publisher_paused(now, MediaKind::Video, HIGH, true);
    s.drain();
    assert_eq!(s.f.viewer_status(v).unwrap().target_layer, Some(MID));
    assert!(s.requests_since(1000).contains(&pli(MID)));
    s.run(1200, &[LOW, MID]);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(MID));

    // MID goes silent without a pause event: after the idle timeout, LOW.
    s.run(2100, &[LOW]);
    assert_eq!(s.f.viewer_status(v).unwrap().target_layer, Some(MID));
    s.run(2300, &[LOW]);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(LOW));
    assert_continuous(&s.video_of(v));
}

#[test]
fn pin_audio_only_and_back_to_auto() {
    let mut s = Sim::new(9);
    s.run(100, &ALL);
    let v = s.add(1, ViewerPreference::Auto, Some(5_000_000));
    s.run(500, &ALL);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(HIGH));

    let now = s.now();
    s.f.set_viewer_preference(now, v, ViewerPreference::Pin(LOW))
        .unwrap();
    s.run(700, &ALL);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(LOW));

    let now = s.now();
    s.f.set_viewer_preference(now, v, ViewerPreference::AudioOnly)
        .unwrap();
    let status = s.f.viewer_status(v).unwrap();
    assert_eq!((status.target_layer, status.current_layer), (None, None));
    let video_before = s.video_of(v).len();
    let audio_before = s.audio_of(v).len();
    s.run(1500, &ALL);
    assert_eq!(
        s.video_of(v).len(),
        video_before,
        "no video in audio-only mode"
    );
    assert!(s.audio_of(v).len() > audio_before + 30);

    let now = s.now();
    s.f.set_viewer_preference(now, v, ViewerPreference::Auto)
        .unwrap();
    s.run(1700, &ALL);
    assert_eq!(s.f.viewer_status(v).unwrap().current_layer, Some(HIGH));
    let video = s.video_of(v);
    assert_continuous(&video);
    // After 800 ms without video the timestamp jumped by about 800 ms.
    let gap = ts_delta(
        video[video_before].timestamp,
        video[video_before - 1].timestamp,
    );
    assert!((90 * 700..90 * 900).contains(&gap), "{gap}");
    assert_continuous(&s.audio_of(v));
}

#[test]
fn a_publisher_reconnect_with_new_ssrcs_and_bases_is_seamless() {
    let mut s = Sim::new(10);
    s.run(100, &[LOW]);
    let v = s.add(1, ViewerPreference::Auto, None);
    s.run(1000, &[LOW]);
    let audio_before = s.audio_of(v).len();
    let video_before = s.video_of(v).len();

    let now = s.now();
    s.f.publisher_left(now);
    assert_eq!(s.f.availability().lowest(), None);
    // Two seconds later a new publisher: new SSRCs, new random seq/ts bases.
    s.ms = 3000;
    s.p = common::Publisher::new(&mut s.rng);
    s.answer_requests = true;
    s.run(3500, &[LOW]);

    let audio = s.audio_of(v);
    let video = s.video_of(v);
    assert!(audio.len() > audio_before + 10);
    assert!(video.len() > video_before + 5);
    assert_continuous(&audio);
    assert_continuous(&video);
    let a_gap = ts_delta(
        audio[audio_before].timestamp,
        audio[audio_before - 1].timestamp,
    );
    assert!((48 * 1900..48 * 2100).contains(&a_gap), "{a_gap}");
    let v_gap = ts_delta(
        video[video_before].timestamp,
        video[video_before - 1].timestamp,
    );
    assert!((90 * 1900..90 * 2200).contains(&v_gap), "{v_gap}");
    assert_eq!(
        tag_of(&video[video_before].payload).ssrc,
        s.p.video[LOW.index()].ssrc
    );
}

#[test]
fn removing_viewers_leaves_no_state() {
    let mut s = Sim::new(12);
    s.answer_requests = false;
    s.run(100, &ALL);
    let viewers: Vec<ViewerId> = (0..100)
        .map(|id| s.add(id, ViewerPreference::Auto, Some(id * 30_000)))
        .collect();
    s.run(300, &ALL);
    assert_eq!(s.f.viewer_count(), 100);
    assert_eq!(
        s.f.add_viewer(s.now(), ViewerId(5), Default::default()),
        Err(ForwardError::ViewerExists(ViewerId(5)))
    );
    // Everyone still waits (the publisher ignores requests); a PLI now is deferred to the end
    // of the throttle window. Nobody will be there to want it.
    s.run(1200, &ALL);
    let now = s.now();
    let outcome =
        s.f.handle_viewer_keyframe_request(now, ViewerId(99), KeyframeKind::Pli)
            .unwrap();
    assert!(
        matches!(outcome, Some(RequestOutcome::Scheduled(_))),
        "{outcome:?}"
    );
    let before = s.requests.len();
    for v in &viewers {
        assert!(s.f.remove_viewer(*v));
    }
    assert!(!s.f.remove_viewer(ViewerId(5)));
    assert_eq!(s.f.viewer_count(), 0);
    assert_eq!(s.f.viewer_status(ViewerId(5)), None);
    s.clear_out();
    s.answer_requests = true;
    s.run(3000, &ALL);
    assert!(s.out.is_empty());
    assert_eq!(s.requests.len(), before, "no request for viewers that left");
    // The same id can come back and starts afresh.
    let v = s.add(5, ViewerPreference::Auto, None);
    s.run(3300, &ALL);
    assert!(!s.video_of(v).is_empty());
    assert_eq!(s.f.viewer_count(), 1);
}

#[test]
fn padding_is_squeezed_out_of_the_viewers_numbering() {
    let mut s = Sim::new(13);
    s.run(100, &[LOW]);
    let v = s.add(1, ViewerPreference::Auto, None);
    s.run(300, &[LOW]);
    let pad1 = s.p.padding(LOW);
    let pad2 = s.p.padding(LOW);
    s.send(vec![pad1, pad2]);
    s.run(500, &[LOW]);
    let video = s.video_of(v);
    assert_continuous(&video);
    assert!(video.iter().all(|w| !w.payload.is_empty()));
    assert_eq!(s.f.counters().padding_dropped, 2);
}

#[test]
fn duplicates_are_dropped_and_reordered_packets_keep_their_place() {
    let mut s = Sim::new(14);
    s.run(100, &[MID]);
    let v = s.add(1, ViewerPreference::Pin(MID), None);
    s.run(300, &[MID]);
    s.clear_out();
    // Two frames of two packets: deliver 2, 1, 1 (duplicate), 4, 3.
    let mut frames = s.p.frame(MID, false);
    frames.extend(s.p.frame(MID, false));
    let order = [1, 0, 0, 3, 2];
    s.send(order.iter().map(|&i| frames[i].clone()).collect());
    let video = s.video_of(v);
    assert_eq!(video.len(), 4);
    assert_eq!(s.f.counters().packets_dropped, 1);
    let mut sorted = video.clone();
    sorted.sort_by_key(|w| w.seq);
    assert_continuous(&sorted);
    let tags: Vec<u16> = sorted.iter().map(|w| tag_of(&w.payload).seq).collect();
    let expect: Vec<u16> = frames[..4].iter().map(|p| p.header.seq).collect();
    assert_eq!(tags, expect);
}

#[test]
fn counters_add_up() {
    let mut s = Sim::new(15);
    s.run(100, &[LOW]);
    let a = s.add(1, ViewerPreference::Auto, None);
    let b = s.add(2, ViewerPreference::AudioOnly, None);
    s.run(1000, &[LOW]);
    let c = s.f.counters();
    let total = s.out.len() as u64;
    assert_eq!(c.packets_out, total);
    assert_eq!(
        total,
        (s.video_of(a).len() + s.audio_of(a).len() + s.audio_of(b).len()) as u64
    );
    assert!(s.video_of(b).is_empty());
    assert_eq!(c.keyframe_requests_out, s.requests.len() as u64);
    assert!(c.packets_in > 0);
}

#[test]
fn poll_timeout_never_reports_a_past_deadline_after_handle_timeout() {
    let mut s = Sim::new(16);
    s.run(100, &ALL);
    let v = s.add(1, ViewerPreference::Auto, Some(5_000_000));
    s.answer_requests = false;
    s.run(1500, &ALL);
    // MID and HIGH stop without a pause event; LOW goes on (Sim::timeouts checks each call).
    s.run(4000, &[LOW]);
    assert_eq!(s.f.availability().lowest(), Some(LOW));
    assert!(!s.f.availability().is_live(HIGH));
    // Everything stops: layers go idle, the viewer waits for nothing, caches expire.
    let now = s.now();
    s.f.publisher_left(now);
    for ms in (1500..12_000).step_by(7) {
        s.ms = ms;
        let now = s.now();
        if s.f.poll_timeout().is_some_and(|t| t <= now) {
            s.f.handle_timeout(now);
            assert!(
                s.f.poll_timeout().is_none_or(|t| t > now),
                "a due timeout is still due after handling it at {ms} ms"
            );
        }
        s.drain();
    }
    assert_eq!(s.f.poll_timeout(), None, "idle forwarder has nothing to do");
    assert_eq!(s.f.viewer_status(v).unwrap().target_layer, None);
}
