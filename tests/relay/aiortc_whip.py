"""An aiortc WHIP publisher: synthetic VP8 video carrying a frame counter, plus Opus audio.

    python aiortc_whip.py --url http://HOST:PORT/whip/STREAM --address 127.0.0.2 --seconds 10

POSTs a complete offer (aiortc gathers before `setLocalDescription` returns) with
`Content-Type: application/sdp`, applies the answer, publishes for `--seconds` after the
connection is up, then DELETEs the session. Prints JSON lines on stdout:
`{"event": "offer", "candidates": [...]}`, `{"event": "connected", ...}` and a final
`{"event": "done", ...}`. Exits non-zero on any failure. Run it only inside a private
network namespace (tests/relay_aiortc.rs does).
"""

import argparse
import asyncio
import sys
import time

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import VideoFrame

import rc_aiortc as rc


class CounterTrack(VideoStreamTrack):
    """640x480 at 30 fps; frame n shows n in the counter blocks."""

    def __init__(self):
        super().__init__()
        self.sent = 0
        # When frame n was handed to the encoder (CLOCK_MONOTONIC ms, comparable with the
        # viewer's decode times: both processes run on this machine).
        self.created_ms = []

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=rc.WIDTH, height=rc.HEIGHT, format="yuv420p")
        y, u, v = frame.planes
        y.update(rc.luma_plane(self.sent & 0xFFFF, y.line_size))
        u.update(bytes([128]) * u.buffer_size)
        v.update(bytes([128]) * v.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.created_ms.append(round(time.monotonic() * 1000))
        self.sent += 1
        return frame


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
    video = CounterTrack()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(video, direction="sendonly")
    connected = asyncio.Event()
    failed = asyncio.Event()

    @pc.on("connectionstatechange")
    def _state():
        rc.log(f"publisher: connection {pc.connectionState}")
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
        async with http.post(args.url, data=offer, headers=headers) as response:
            body = await response.text()
            if response.status != 201:
                rc.log(f"publisher: POST {args.url} -> {response.status}: {body.strip()}")
                await pc.close()
                return 1
            location = response.headers.get("Location")
        answer_candidates = rc.offer_candidates(body)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        waiter = asyncio.ensure_future(connected.wait())
        failer = asyncio.ensure_future(failed.wait())
        await asyncio.wait({waiter, failer}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        failer.cancel()
        if not connected.is_set():
            rc.log(f"publisher: not connected within {args.timeout} s ({pc.connectionState})")
            await pc.close()
            return 1
        connect_ms = round((time.monotonic() - started) * 1000)
        rc.emit({"event": "connected", "connect_ms": connect_ms, "answer_candidates": answer_candidates})

        await asyncio.sleep(args.seconds)

        delete_status = None
        if location:
            base = args.url.split("/whip/")[0]
            async with http.delete(base + location) as response:
                delete_status = response.status
    await pc.close()
    rc.emit({"event": "done", "frames_sent": video.sent, "delete_status": delete_status,
             "frame_created_ms": video.created_ms})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
