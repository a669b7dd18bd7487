"""Shared parts of the aiortc WHIP publisher and WHEP viewer (tests/relay_aiortc.rs).

Containment: aiortc (aioice) gathers a host candidate on every interface address and, with
no ICE servers configured, adds Google's STUN server. `pin_host_address` makes aioice
gather on exactly one address, `RTCConfiguration(iceServers=[])` turns STUN off, and
`offer_candidates` lets the scripts print the candidates they offered so the Rust test can
check that nothing else was offered. The Rust test also runs these scripts inside a private
network namespace, so even a failed pin could not reach beyond it.

The picture carries a frame counter: 16 blocks of 40x40 pixels along the top edge, black or
white for the counter's bits (most significant first), which survive VP8 compression.
"""

import json
import sys
import time

import aioice.ice
from aiortc import RTCConfiguration

WIDTH = 640
HEIGHT = 480
BLOCK = 40
BITS = 16


def pin_host_address(address):
    """Makes aioice gather host candidates on `address` only (it is the one function
    aioice asks for local addresses)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]


def configuration():
    """No STUN/TURN server: host candidates only."""
    return RTCConfiguration(iceServers=[])


def offer_candidates(sdp):
    """The connection addresses of the `a=candidate` lines."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) > 5:
                found.append(parts[4])
    return found


def emit(obj):
    """One JSON object per line on stdout (the Rust test reads them as they come)."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(message):
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def luma_plane(counter, line_size=WIDTH):
    """The Y plane for frame `counter`: the counter blocks on top, mid-grey below with a
    white bar moving one block per frame (so every frame has motion to encode)."""
    top = bytearray()
    for bit in range(BITS):
        on = (counter >> (BITS - 1 - bit)) & 1
        top += bytes([235 if on else 16]) * BLOCK
    top += bytes([128]) * (line_size - len(top))
    body = bytearray([128]) * line_size
    bar = (counter * 8) % (WIDTH - 16)
    body[bar : bar + 16] = bytes([235]) * 16
    return bytes(top) * BLOCK + bytes(body) * (HEIGHT - BLOCK)


def read_counter(frame):
    """The counter drawn by `luma_plane`, read back from a decoded frame (None when the
    frame has another size)."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        return None
    plane = frame.planes[0]
    data = bytes(plane)
    row = (BLOCK // 2) * plane.line_size
    value = 0
    for bit in range(BITS):
        value = (value << 1) | (1 if data[row + bit * BLOCK + BLOCK // 2] > 128 else 0)
    return value
