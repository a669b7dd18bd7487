"""Encodes the counter picture of rc_aiortc.py to a VP8 IVF file with PyAV's libvpx (the
encoder aiortc itself uses), for the webrtc-rs publisher of tests/relay_aiortc.rs, which
has no encoder of its own.

    python make_ivf.py OUT.ivf [FRAMES]

30 frames a second, a keyframe every 30 frames (so a viewer joining anywhere in the loop
decodes within a second), about 1 Mbit/s. Frame n shows counter n.
"""

import sys
from fractions import Fraction

import av
from av import VideoFrame

import rc_aiortc as rc


def main():
    out = sys.argv[1]
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    container = av.open(out, mode="w", format="ivf")
    # Real-time speed settings: the default ("good", cpu-used 0) takes ~20 s for 150 frames.
    stream = container.add_stream(
        "libvpx", rate=30, options={"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    )
    stream.width = rc.WIDTH
    stream.height = rc.HEIGHT
    stream.pix_fmt = "yuv420p"
    stream.bit_rate = 1_000_000
    stream.codec_context.gop_size = 30
    stream.codec_context.time_base = Fraction(1, 30)
    for n in range(frames):
        frame = VideoFrame(width=rc.WIDTH, height=rc.HEIGHT, format="yuv420p")
        y, u, v = frame.planes
        y.update(rc.luma_plane(n, y.line_size))
        u.update(bytes([128]) * u.buffer_size)
        v.update(bytes([128]) * v.buffer_size)
        frame.pts = n
        frame.time_base = Fraction(1, 30)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    rc.emit({"event": "done", "frames": frames, "path": out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
