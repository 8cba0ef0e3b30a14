"""Voice and video checked by their content, not by their first bytes.

``sniff`` trusts a header; anyone can put a WAV header in front of 5 KB of
random bytes. Here the file is demuxed and decoded with PyAV (FFmpeg, bundled
in its wheels) and refused unless it really is what it claims:

* the demuxer is the one the sniffed type names (never FFmpeg's guess: some
  demuxers follow playlists or external references);
* it has the stream its kind needs (audio for voice, video for video), of
  at most the configured pixels, read from the stream header before decoding;
* every audio packet decodes (at most 1% may fail), video keyframes decode
  (one per second at most, so an intra-only file costs no more than a normal
  one), and what decodes covers at least 90% of the duration the container
  declares: a truncated body is refused;
* PCM audio, the one codec where any bytes decode, must not look like random
  bytes: noise at near full scale that crosses zero on every other sample;
* the decoded duration is within the kind's limit.

It is blocking CPU work: callers run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
from array import array
from dataclasses import dataclass
from typing import IO, Any

import av
import av.logging
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.video.frame import VideoFrame
from PIL import Image

from app.core.errors import PayloadTooLarge, UnsupportedMediaType
from app.models.enums import MediaKind

logger = logging.getLogger(__name__)
av.logging.set_level(None)  # FFmpeg's chatter stays out of the service log (errors still raise)

# Sniffed content type -> the only demuxer allowed to read it.
DEMUXERS = {
    "audio/wav": "wav",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/mp4": "mov",
    "video/mp4": "mov",
    "video/quicktime": "mov",
}
PCM_CODECS = frozenset({"pcm_s16le", "pcm_s16be", "pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f32le"})
MAX_ERROR_SHARE = 0.01
# 5 minutes of 60 fps video with its sound is ~35,000 packets; millions of
# tiny ones are a way to make the Python loop below cost minutes.
MAX_PACKETS = 500_000
MIN_COVERAGE = 0.9
POSTER_EDGE = 640


@dataclass(frozen=True, slots=True)
class Probe:
    """What decoding found: recorded on the media row."""

    container: str
    codec: str  # the kind's stream: audio codec for voice, video codec for video
    audio_codec: str | None
    duration_ms: int
    width: int | None = None  # as displayed (rotation applied)
    height: int | None = None
    poster: bytes | None = None  # JPEG of the first keyframe (video)

    def playable(self) -> bool:
        """Plays as stored in browsers and in WeChat/phones, without a derivative."""
        if self.width is None:  # voice
            return (self.container, self.codec) in {
                ("mp3", "mp3float"),
                ("mp3", "mp3"),
                ("mov", "aac"),
                ("aac", "aac"),
                ("wav", "pcm_s16le"),
            }
        return (
            self.container == "mov"
            and self.codec == "h264"
            and self.audio_codec in (None, "aac", "mp3float", "mp3")
        )


class Undecodable(UnsupportedMediaType):
    code = "undecodable_media"


_LABEL = {MediaKind.voice: "语音", MediaKind.video: "视频"}
_REDO = {MediaKind.voice: "请重新录制后上传", MediaKind.video: "请重新拍摄后上传"}


def _refuse(kind: MediaKind, why: str) -> Undecodable:
    return Undecodable(f"{_LABEL[kind]}文件无法播放（{why}），{_REDO[kind]}")


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} 分钟" if seconds % 60 == 0 else f"{seconds} 秒"


def probe(
    source: str | IO[bytes],
    *,
    kind: MediaKind,
    content_type: str,
    max_seconds: int,
    max_pixels: int,
) -> Probe:
    """Decode ``source`` (a path or a seekable binary file) or raise 415/413."""
    if kind not in _LABEL or content_type not in DEMUXERS:
        raise _refuse(kind if kind in _LABEL else MediaKind.voice, "格式不受支持")
    try:
        with av.open(source, mode="r", format=DEMUXERS[content_type]) as container:
            return _inspect(container, kind, max_seconds=max_seconds, max_pixels=max_pixels)
    except av.FFmpegError as exc:
        logger.info("media refused: does not decode", extra={"error": str(exc)[:200]})
        raise _refuse(kind, "内容已损坏或不是有效的音视频") from exc


def _inspect(container: Any, kind: MediaKind, *, max_seconds: int, max_pixels: int) -> Probe:
    audio = next(iter(container.streams.audio), None)
    cover_art = av.stream.Disposition.attached_pic  # an MP3's album picture is no video
    video = next((s for s in container.streams.video if not s.disposition & cover_art), None)
    if kind is MediaKind.voice:
        if audio is None or video is not None:
            raise _refuse(kind, "没有音频内容")
    elif video is None:
        raise _refuse(kind, "没有视频画面")
    if video is not None:
        w, h = video.codec_context.width, video.codec_context.height
        if not w or not h:
            raise _refuse(kind, "画面尺寸无效")
        if w * h > max_pixels:
            raise PayloadTooLarge(
                f"视频分辨率过高（{w}×{h}，上限 {max_pixels / 1_000_000:g} 百万像素），"
                "请降低分辨率后再上传"
            )
        video.codec_context.skip_frame = "NONKEY"
        video.thread_type = "AUTO"
    declared = container.duration / 1_000_000 if container.duration else None
    if declared is not None and declared > max_seconds * 1.5 + 10:
        raise _too_long(kind, max_seconds)  # refuse before decoding a huge file

    tally = _Tally()
    streams = [s for s in (audio, video) if s is not None]
    for count, packet in enumerate(container.demux(streams)):
        if count > MAX_PACKETS:
            raise _refuse(kind, "文件结构异常")
        if packet.size == 0:
            continue
        if packet.stream is video:
            tally.video_packet(packet)
        else:
            tally.audio_packet(packet, audio)
    seconds = tally.check(kind, audio, video, declared)
    if seconds > max_seconds:
        raise _too_long(kind, max_seconds)
    width, height = tally.display_size(video)
    main: Any = video if video is not None else audio
    return Probe(
        container=container.format.name,
        codec=main.codec_context.name,
        audio_codec=audio.codec_context.name if audio is not None else None,
        duration_ms=round(seconds * 1000),
        width=width,
        height=height,
        poster=tally.poster_jpeg(),
    )


def _too_long(kind: MediaKind, max_seconds: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{_LABEL[kind]}不能超过 {_minutes(max_seconds)}")


class _Tally:
    """Running counts over the packets of one file."""

    def __init__(self) -> None:
        self.audio_packets = self.audio_errors = self.samples = 0
        self.sample_rate = 0
        self.pcm = _NoiseMeter()
        self.keyframes = self.key_errors = self.key_decoded = 0
        self.video_end = 0.0
        self.last_key_at = -math.inf
        self.first_frame: VideoFrame | None = None

    def audio_packet(self, packet: Any, stream: Any) -> None:
        self.audio_packets += 1
        try:
            frames = packet.decode()
        except av.FFmpegError:
            self.audio_errors += 1
            return
        for frame in frames:
            assert isinstance(frame, AudioFrame)
            self.samples += frame.samples
            self.sample_rate = frame.sample_rate or self.sample_rate
            if stream.codec_context.name in PCM_CODECS:
                self.pcm.add(frame)

    def video_packet(self, packet: Any) -> None:
        if packet.pts is not None and packet.time_base is not None:
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            self.video_end = max(self.video_end, end)
        if not packet.is_keyframe:
            return
        at = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
        if at < self.last_key_at + 1.0:
            return  # one keyframe a second is proof enough
        self.last_key_at = at
        self.keyframes += 1
        try:
            frames = packet.decode()
        except av.FFmpegError:
            self.key_errors += 1
            return
        for frame in frames:
            self.key_decoded += 1
            if self.first_frame is None and isinstance(frame, VideoFrame):
                self.first_frame = frame

    def check(self, kind: MediaKind, audio: Any, video: Any, declared: float | None) -> float:
        if audio is not None:
            if self.samples == 0 or not self.sample_rate:
                raise _refuse(kind, "音频无法解码")
            if self.audio_errors > self.audio_packets * MAX_ERROR_SHARE:
                raise _refuse(kind, "音频数据已损坏")
            if self.pcm.looks_random():
                raise _refuse(kind, "音频内容是随机数据")
        audio_seconds = self.samples / self.sample_rate if self.sample_rate else 0.0
        if video is not None:
            self._flush(video)
            if self.key_decoded == 0 or self.key_errors > max(1, self.keyframes // 2):
                raise _refuse(kind, "画面无法解码")
        seconds = max(audio_seconds, self.video_end) if video is not None else audio_seconds
        if seconds <= 0:
            raise _refuse(kind, "时长为零")
        if declared and seconds < declared * MIN_COVERAGE:
            raise _refuse(kind, "文件不完整")
        return seconds

    def _flush(self, video: Any) -> None:
        try:
            for frame in video.codec_context.decode(None):
                self.key_decoded += 1
                if self.first_frame is None and isinstance(frame, VideoFrame):
                    self.first_frame = frame
        except av.FFmpegError:
            self.key_errors += 1

    def display_size(self, video: Any) -> tuple[int | None, int | None]:
        if video is None:
            return None, None
        w, h = video.codec_context.width, video.codec_context.height
        rotation = self.first_frame.rotation if self.first_frame is not None else 0
        return (h, w) if rotation % 180 else (w, h)

    def poster_jpeg(self) -> bytes | None:
        if self.first_frame is None:
            return None
        image: Image.Image = self.first_frame.to_image()  # type: ignore[no-untyped-call]
        rotation = self.first_frame.rotation
        if rotation % 360:
            image = image.rotate(rotation, expand=True)
        image.thumbnail((POSTER_EDGE, POSTER_EDGE), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=85, optimize=True)
        return buf.getvalue()


class _NoiseMeter:
    """Is this PCM random bytes? Real recordings, even loud ones, are far from
    both marks at once: uniform random samples sit near full scale (RMS about
    58% of it) and change sign on half of all samples."""

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono")
        self.blocks = 0
        self.crossings = 0
        self.pairs = 0
        self.square_sum = 0.0
        self.count = 0

    def add(self, frame: AudioFrame) -> None:
        if self.blocks >= 64:
            return  # 64 frames of evidence are plenty
        for out in self._resampler.resample(frame):
            samples = array("h", bytes(out.planes[0])[: out.samples * 2])
            if not samples:
                continue
            self.blocks += 1
            self.count += len(samples)
            self.square_sum += sum(s * s for s in samples)
            self.pairs += len(samples) - 1
            self.crossings += sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))

    def looks_random(self) -> bool:
        if self.count < 256:
            return False
        rms = math.sqrt(self.square_sum / self.count) / 32768
        zero_crossing_rate = self.crossings / max(1, self.pairs)
        return rms > 0.35 and zero_crossing_rate > 0.35
