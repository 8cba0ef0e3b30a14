"""Real media files made in the test run (no binary fixtures to rot).

Voice and video are encoded with PyAV (FFmpeg in its wheels: AAC, AMR-NB,
MP3, H.264 encoders included), so they decode like a phone's recordings;
the fakes put random bytes behind a real header, as an attacker would.
"""

from __future__ import annotations

import io
import math
import os
import struct
import wave
import zlib
from functools import cache
from pathlib import Path

import av
from PIL import Image


def jpeg_with_gps(size: tuple[int, int] = (320, 240)) -> bytes:
    img = Image.new("RGB", size, (200, 60, 40))
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPhone 15"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90° on display
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (31.0, 12.0, 30.0)  # GPSLatitude 31°12'30" (Dazhou)
    gps[3], gps[4] = "E", (107.0, 28.0, 5.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


@cache
def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A grey PNG of width × height pixels (100 MP by default) that is a few
    hundred KB: decoding it would take 100 MB+ and seconds."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    packer = zlib.compressobj(3)
    row = b"\x00" + b"\x00" * width  # filter byte, then one grey byte per pixel
    body = b"".join(packer.compress(row * 100) for _ in range(height // 100)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _tone(rate: int, seconds: float, freq: float = 440.0) -> tuple[bytes, int]:
    n = int(rate * seconds)
    samples = (int(math.sin(2 * math.pi * freq * i / rate) * 12000) for i in range(n))
    return struct.pack(f"<{n}h", *samples), n


def wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A sine tone, 16-bit mono PCM."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(_tone(rate, seconds)[0])
    return buf.getvalue()


@cache
def _encode_audio(container: str, codec: str, rate: int, seconds: float) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        data, n = _tone(rate, seconds)
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(data)
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


_FIXTURES = Path(__file__).parent / "media" / "fixtures"


def amr(seconds: float = 1.0) -> bytes:
    """AMR-NB (WeChat's and many phones' voice format): browsers cannot play it.

    Read from files, not encoded here: PyAV 18.1.1's wheels dropped the
    AMR-NB encoder (libopencore_amrnb), though they still decode it, which
    is all the app needs. The files are a 440 Hz tone of 1, 2 and 3 seconds,
    encoded by ``_encode_audio("amr", "libopencore_amrnb", 8000, seconds)``
    with PyAV 18.1.0."""
    path = _FIXTURES / f"tone-{seconds:g}s.amr"
    if not path.is_file():
        raise ValueError(f"no AMR fixture of {seconds:g} s: add one to {_FIXTURES}")
    return path.read_bytes()


def m4a(seconds: float = 1.0) -> bytes:
    return _encode_audio("ipod", "aac", 16000, seconds)


def mp3(seconds: float = 1.0) -> bytes:
    return _encode_audio("mp3", "libmp3lame", 44100, seconds)


@cache
def _encode_video(container: str, codec: str, seconds: float, size: int, with_audio: bool) -> bytes:
    fps = 10
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        video = out.add_stream(codec, rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono") if with_audio else None
        for i in range(int(seconds * fps)):
            picture = Image.new("RGB", (size, size), (i * 20 % 255, 80, 200))
            frame = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            data, n = _tone(16000, seconds)
            sound = av.AudioFrame(format="s16", layout="mono", samples=n)
            sound.planes[0].update(data)
            sound.sample_rate = 16000
            out.mux(audio.encode(sound))
            out.mux(audio.encode(None))
    return buf.getvalue()


def mp4(padding: int = 0, *, seconds: float = 1.0, size: int = 64) -> bytes:
    """A 64×64 H.264 MP4 (plays everywhere), optionally followed by a
    ``free`` box of ``padding`` bytes (still a valid file, just larger)."""
    data = _encode_video("mp4", "libx264", seconds, size, False)
    if padding:
        data += struct.pack(">I", 8 + padding) + b"free" + b"\x00" * padding
    return data


def mov_mpeg4(seconds: float = 1.0) -> bytes:
    """A QuickTime file in MPEG-4 part 2 with AAC sound: browsers need a copy."""
    return _encode_video("mov", "mpeg4", seconds, 64, True)


# -- fakes: a real header, random bytes behind it --------------------------


def wav_header_then_random(random_bytes: int = 5 * 1024) -> bytes:
    return wav(seconds=1.0)[:44] + os.urandom(random_bytes)


def mp4_head_then_random(random_bytes: int = 5 * 1024) -> bytes:
    return mp4()[:64] + os.urandom(random_bytes)


def amr_magic_then_random(random_bytes: int = 5 * 1024) -> bytes:
    return b"#!AMR\n" + os.urandom(random_bytes)
