"""An aiortc WHEP viewer: recvonly video and audio, counts decoded frames.

    python aiortc_whep.py --url http://HOST:PORT/whep/STREAM --address 127.0.0.3 --seconds 10

POSTs a complete recvonly offer, applies the answer, decodes video (`await track.recv()`)
and audio for `--seconds` after the connection is up, then DELETEs the session. Prints JSON
lines on stdout: `{"event": "offer", ...}`, `{"event": "connected", ...}`, one
`{"event": "tick", ...}` a second, and a final `{"event": "done", frames, audio_frames,
first_frame_ms, width, height, ...}`. The counters of RTX packets received and NACKs/PLIs
sent come from hooks on aiortc's `RTCRtpReceiver` (aiortc keeps no such statistics).
Run it only inside a private network namespace (tests/relay_aiortc.rs does).
"""

import argparse
import asyncio
import sys
import time

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpreceiver import RTCRtpReceiver

import rc_aiortc as rc

# What happened to each loss, for a failing test's message: (ms since start, sequence numbers).
repair_log = {"nacks": [], "rtx": []}
started_at = time.monotonic()


def since_start_ms():
    return round((time.monotonic() - started_at) * 1000)


stats = {"rtx_received": 0, "rtp_received": 0, "nacks_sent": 0, "nacked_seqs": 0, "plis_sent": 0,
         "renacks_sent": 0}

_handle_rtp = RTCRtpReceiver._handle_rtp_packet
_send_nack = RTCRtpReceiver._send_rtcp_nack
_send_pli = RTCRtpReceiver._send_rtcp_pli


async def counting_handle_rtp(self, packet, arrival_time_ms):
    stats["rtp_received"] += 1
    codec = getattr(self, "_RTCRtpReceiver__codecs", {}).get(packet.payload_type)
    if codec is not None and is_rtx(codec):
        stats["rtx_received"] += 1
        if len(packet.payload) >= 2:
            repair_log["rtx"].append((since_start_ms(), int.from_bytes(packet.payload[:2], "big")))
    return await _handle_rtp(self, packet, arrival_time_ms)


async def counting_send_nack(self, media_ssrc, lost):
    stats["nacks_sent"] += 1
    stats["nacked_seqs"] += len(lost)
    repair_log["nacks"].append((since_start_ms(), list(lost)))
    tries = nack_targets.get(id(self), (None, None, None, {}))[3]
    for seq in lost:
        tries[seq] = tries.get(seq, 0) + 1
    nack_targets[id(self)] = (self, media_ssrc, time.monotonic(), tries)
    return await _send_nack(self, media_ssrc, lost)


async def counting_send_pli(self, media_ssrc):
    stats["plis_sent"] += 1
    return await _send_pli(self, media_ssrc)


# aiortc NACKs a hole once, when it first sees it, and again only when a *new* hole appears;
# if the retransmission is lost too (the loss test drops RTX like any other packet) and no
# other packet goes missing for a while, its jitter buffer waits for seconds. Browsers
# (libwebrtc) re-send a NACK every round trip until the packet comes or ~10 tries; this does
# the same for aiortc, so the test measures the relay's repair rather than aiortc's policy.
RENACK_EVERY = 0.1
RENACK_TRIES = 10
nack_targets = {}  # id(receiver) -> (receiver, media ssrc, last NACK time, tries per seq)


async def renack_forever():
    while True:
        await asyncio.sleep(RENACK_EVERY)
        now = time.monotonic()
        for key, (receiver, ssrc, last, tries) in list(nack_targets.items()):
            generator = getattr(receiver, "_RTCRtpReceiver__nack_generator", None)
            if generator is None or now - last < RENACK_EVERY:
                continue
            for seq in list(tries):
                if seq not in generator.missing:
                    del tries[seq]
            lost = sorted(seq for seq in generator.missing if tries.get(seq, 0) < RENACK_TRIES)
            if lost:
                stats["renacks_sent"] += 1
                await receiver._send_rtcp_nack(ssrc, lost)


RTCRtpReceiver._handle_rtp_packet = counting_handle_rtp
RTCRtpReceiver._send_rtcp_nack = counting_send_nack
RTCRtpReceiver._send_rtcp_pli = counting_send_pli


class Tally:
    def __init__(self, started):
        self.started = started
        self.frames = 0
        self.audio_frames = 0
        self.first_frame_ms = None
        self.width = None
        self.height = None
        self.counters = set()
        self.counter_first = None
        self.counter_last = None
        self.errors = []
        self.last_frame_at = None
        self.max_gap = 0.0
        # Frame counter -> when it was first decoded (CLOCK_MONOTONIC ms).
        self.decoded_ms = {}

    def take_max_gap_ms(self):
        """The longest wait between two decoded frames since the last call."""
        gap, self.max_gap = self.max_gap, 0.0
        return round(gap * 1000)

    async def video(self, track):
        try:
            while True:
                frame = await track.recv()
                if self.first_frame_ms is None:
                    self.first_frame_ms = round((time.monotonic() - self.started) * 1000)
                self.frames += 1
                now = time.monotonic()
                if self.last_frame_at is not None:
                    self.max_gap = max(self.max_gap, now - self.last_frame_at)
                self.last_frame_at = now
                self.width, self.height = frame.width, frame.height
                counter = rc.read_counter(frame)
                if counter is not None:
                    self.decoded_ms.setdefault(counter, round(now * 1000))
                    self.counters.add(counter)
                    if self.counter_first is None:
                        self.counter_first = counter
                    self.counter_last = counter
        except MediaStreamError:
            pass
        except Exception as error:  # noqa: BLE001 - reported in the summary
            self.errors.append(f"video: {error!r}")

    async def audio(self, track):
        try:
            while True:
                await track.recv()
                self.audio_frames += 1
        except MediaStreamError:
            pass
        except Exception as error:  # noqa: BLE001
            self.errors.append(f"audio: {error!r}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--address", required=True, help="the only address to gather on")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--token", default="aiortc-test")
    parser.add_argument("--timeout", type=float, default=20.0, help="connection timeout")
    args = parser.parse_args()

    rc.pin_host_address(args.address)
    pc = RTCPeerConnection(rc.configuration())
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    started = time.monotonic()
    tally = Tally(started)
    tasks = [asyncio.ensure_future(renack_forever())]
    connected = asyncio.Event()
    failed = asyncio.Event()

    @pc.on("track")
    def _track(track):
        consume = tally.video if track.kind == "video" else tally.audio
        tasks.append(asyncio.ensure_future(consume(track)))

    @pc.on("connectionstatechange")
    def _state():
        rc.log(f"viewer: connection {pc.connectionState}")
        if pc.connectionState == "connected":
            connected.set()
        elif pc.connectionState in ("failed", "closed"):
            failed.set()

    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    rc.emit({"event": "offer", "candidates": rc.offer_candidates(offer)})

    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {args.token}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
        started = time.monotonic()
        tally.started = started
        async with http.post(args.url, data=offer, headers=headers) as response:
            body = await response.text()
            if response.status != 201:
                rc.log(f"viewer: POST {args.url} -> {response.status}: {body.strip()}")
                await pc.close()
                return 1
            location = response.headers.get("Location")
        rtx_negotiated = any("rtx/90000" in line for line in body.splitlines())
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        waiter = asyncio.ensure_future(connected.wait())
        failer = asyncio.ensure_future(failed.wait())
        await asyncio.wait({waiter, failer}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        failer.cancel()
        if not connected.is_set():
            rc.log(f"viewer: not connected within {args.timeout} s ({pc.connectionState})")
            await pc.close()
            return 1
        rc.emit({
            "event": "connected",
            "connect_ms": round((time.monotonic() - started) * 1000),
            "answer_candidates": rc.offer_candidates(body),
            "rtx_negotiated": rtx_negotiated,
        })

        ticks = []
        begin = time.monotonic()
        second = 0
        while time.monotonic() - begin < args.seconds:
            second += 1
            await asyncio.sleep(max(0.0, begin + second - time.monotonic()))
            tick = {"event": "tick", "second": second, "frames": tally.frames,
                    "audio_frames": tally.audio_frames,
                    "t_ms": round((time.monotonic() - begin) * 1000),
                    "monotonic_ms": round(time.monotonic() * 1000),
                    "max_gap_ms": tally.take_max_gap_ms(), **stats}
            ticks.append({k: v for k, v in tick.items() if k != "event"})
            rc.emit(tick)

        delete_status = None
        if location:
            base = args.url.split("/whep/")[0]
            async with http.delete(base + location) as response:
                delete_status = response.status
    await pc.close()
    for task in tasks:
        task.cancel()
    rc.emit({
        "event": "done",
        "frames": tally.frames,
        "audio_frames": tally.audio_frames,
        "first_frame_ms": tally.first_frame_ms,
        "width": tally.width,
        "height": tally.height,
        "distinct_counters": len(tally.counters),
        "counter_first": tally.counter_first,
        "counter_last": tally.counter_last,
        "errors": tally.errors,
        "delete_status": delete_status,
        "ticks": ticks,
        "repair_log": repair_log,
        "frame_decoded_ms": sorted(tally.decoded_ms.items()),
        **stats,
    })
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
