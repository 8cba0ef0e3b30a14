"""What WeChat can judge of a video or a voice clip, made with PyAV.

mediaCheckAsync reads images and audio only, so a video is checked as a few
key frames spread over its length (JPEG) and its sound track (AAC in .m4a);
a voice clip in a format WeChat does not take (AMR) is checked as an .m4a.
Blocking CPU work on files: run in a thread.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
from PIL import Image

from app.media import transcode
from app.media.probe import DEMUXERS

FRAME_EDGE = 1280  # WeChat takes images up to 10 MB; a 1280 px JPEG is far below
# Audio WeChat reads as it is (mp3, aac, wav); anything else is re-encoded.
AUDIO_AS_IS = frozenset({"audio/mpeg", "audio/aac", "audio/wav", "audio/mp4"})


def _jpeg(frame: Any) -> bytes:
    image: Image.Image = frame.to_image()
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation % 360:
        image = image.rotate(rotation, expand=True)
    image.thumbnail((FRAME_EDGE, FRAME_EDGE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def key_frames(source: Path, *, content_type: str, count: int) -> list[bytes]:
    """Up to ``count`` key frames spread evenly over the video, as JPEG.

    Only key frames are decoded (``skip_frame``), so a five-minute clip costs
    a few dozen decodes; a clip with fewer key frames than asked gives them all,
    and one whose first frame is no key frame still gives its first frame.
    """
    with av.open(str(source), mode="r", format=DEMUXERS[content_type]) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        found: list[tuple[float, Any]] = []
        for frame in container.decode(stream):
            at = float(frame.time) if frame.time is not None else float(len(found))
            found.append((at, frame))
            if len(found) >= 2000:  # bounded whatever the file claims
                break
    if not found:
        with av.open(str(source), mode="r", format=DEMUXERS[content_type]) as container:
            first = next(iter(container.decode(container.streams.video[0])), None)
            return [_jpeg(first)] if first is not None else []
    if len(found) <= count:
        return [_jpeg(f) for _, f in found]
    start, end = found[0][0], found[-1][0]
    chosen: list[Any] = []
    for i in range(count):
        target = start + (end - start) * i / max(1, count - 1)
        best = min(found, key=lambda pair: abs(pair[0] - target))[1]
        if all(best is not c for c in chosen):
            chosen.append(best)
    return [_jpeg(f) for f in chosen]


def has_audio(source: Path, *, content_type: str) -> bool:
    with av.open(str(source), mode="r", format=DEMUXERS[content_type]) as container:
        return bool(container.streams.audio)


def audio_track(source: Path, target: Path, *, content_type: str) -> None:
    """The sound of a video or voice clip as mono AAC in an .m4a."""
    transcode.voice_to_m4a(source, target, content_type=content_type)
