"""Real media files made in the test run (no binary fixtures to rot)."""

from __future__ import annotations

import io
import struct
import wave

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


def wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x01" * int(rate * seconds))
    return buf.getvalue()


def amr(frames: int = 50) -> bytes:
    # AMR-NB storage format: magic, then 12.2 kbit/s frames (header 0x3C + 31 bytes).
    return b"#!AMR\n" + (b"\x3c" + b"\x00" * 31) * frames


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(mdat_bytes: int = 4096) -> bytes:
    """A structurally valid ISO base media file (ftyp + free + mdat)."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    return ftyp + _box(b"free", b"") + _box(b"mdat", b"\x00" * mdat_bytes)
