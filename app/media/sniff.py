"""Deciding a file's type from its first bytes, never from its name or the
client's Content-Type: a PNG renamed .mp4 is still a PNG."""

from __future__ import annotations

from dataclasses import dataclass

from app.models.enums import MediaKind

HEAD_BYTES = 64


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: MediaKind
    content_type: str
    extension: str


_FTYP_BRANDS = {
    # ISO base media: the brand after "ftyp" tells video, audio and HEIF apart.
    b"heic": (MediaKind.image, "image/heic", "heic"),
    b"heix": (MediaKind.image, "image/heic", "heic"),
    b"hevc": (MediaKind.image, "image/heic", "heic"),
    b"heim": (MediaKind.image, "image/heic", "heic"),
    b"heis": (MediaKind.image, "image/heic", "heic"),
    b"mif1": (MediaKind.image, "image/heif", "heif"),
    b"msf1": (MediaKind.image, "image/heif", "heif"),
    b"M4A ": (MediaKind.voice, "audio/mp4", "m4a"),
    b"M4B ": (MediaKind.voice, "audio/mp4", "m4a"),
    b"qt  ": (MediaKind.video, "video/quicktime", "mov"),
}
_VIDEO_BRANDS = (
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"dash",
    b"3gp4",
    b"3gp5",
    b"3g2a",
    b"MSNV",
    b"M4V ",
)


def sniff(head: bytes) -> Sniffed | None:
    if head.startswith(b"%PDF-"):
        return Sniffed(MediaKind.document, "application/pdf", "pdf")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed(MediaKind.image, "image/jpeg", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed(MediaKind.image, "image/png", "png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed(MediaKind.image, "image/webp", "webp")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed(MediaKind.voice, "audio/wav", "wav")
    if head.startswith(b"#!AMR"):
        return Sniffed(MediaKind.voice, "audio/amr", "amr")
    if head.startswith(b"ID3"):
        return Sniffed(MediaKind.voice, "audio/mpeg", "mp3")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return Sniffed(MediaKind.voice, "audio/aac", "aac")  # ADTS AAC
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return Sniffed(MediaKind.voice, "audio/mpeg", "mp3")  # MPEG audio frame sync
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP_BRANDS:
            kind, ctype, ext = _FTYP_BRANDS[brand]
            return Sniffed(kind, ctype, ext)
        if brand in _VIDEO_BRANDS:
            return Sniffed(MediaKind.video, "video/mp4", "mp4")
    return None


ALLOWED_TYPES: dict[MediaKind, tuple[str, ...]] = {
    MediaKind.image: ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"),
    MediaKind.voice: (
        "audio/mpeg",
        "audio/aac",
        "audio/mp4",
        "audio/x-m4a",
        "audio/amr",
        "audio/wav",
    ),
    MediaKind.video: ("video/mp4", "video/quicktime"),
    MediaKind.document: ("application/pdf",),
}
