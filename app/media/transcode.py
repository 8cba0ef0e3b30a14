"""Playable copies of voice and video, made by the worker with PyAV.

A phone records AMR or a MOV in HEVC; a browser plays neither. The original
stays as it was uploaded (its sha256 is the evidence) and a copy that plays
everywhere is stored beside it: AAC in an .m4a for voice, H.264 + AAC in an
.mp4 for video (long edge at most 1280), both with the index first
(``faststart``) so playback starts before the download ends.

Blocking CPU work on files: run in a thread.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.resampler import AudioResampler
from av.video.frame import VideoFrame

from app.media.probe import DEMUXERS

AUDIO_RATE = 44100
AUDIO_BITRATE = 64_000
VIDEO_EDGE = 1280
VIDEO_CRF = "26"


def _open_input(path: Path, content_type: str) -> Any:
    return av.open(str(path), mode="r", format=DEMUXERS[content_type])


def voice_to_m4a(source: Path, target: Path, *, content_type: str) -> None:
    with (
        _open_input(source, content_type) as inp,
        av.open(str(target), mode="w", format="ipod", options={"movflags": "+faststart"}) as out,
    ):
        src = inp.streams.audio[0]
        dst = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        dst.bit_rate = AUDIO_BITRATE
        _copy_audio(inp, src, out, dst, mono=True)


def video_to_mp4(source: Path, target: Path, *, content_type: str) -> None:
    with (
        _open_input(source, content_type) as inp,
        av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        vin = inp.streams.video[0]
        ain = next(iter(inp.streams.audio), None)
        w, h = _fit(vin.codec_context.width, vin.codec_context.height, VIDEO_EDGE)
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        vout = out.add_stream(
            "libx264", rate=rate, options={"crf": VIDEO_CRF, "preset": "veryfast"}
        )
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.time_base = vin.time_base
        aout = None
        if ain is not None:
            aout = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
            aout.bit_rate = 96_000
        rotation_set = False
        resampler = AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        streams = [s for s in (vin, ain) if s is not None]
        for packet in inp.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, VideoFrame):
                    if not rotation_set:
                        if frame.rotation:
                            vout.set_display_rotation(frame.rotation)
                        rotation_set = True
                    scaled = frame.reformat(width=w, height=h, format="yuv420p")
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    out.mux(vout.encode(scaled))
                elif aout is not None:
                    for piece in resampler.resample(frame):
                        piece.pts = None
                        out.mux(aout.encode(piece))
        out.mux(vout.encode(None))
        if aout is not None:
            for piece in resampler.resample(None):
                piece.pts = None
                out.mux(aout.encode(piece))
            out.mux(aout.encode(None))


def _copy_audio(inp: Any, src: Any, out: Any, dst: Any, *, mono: bool) -> None:
    resampler = AudioResampler(format="fltp", layout="mono" if mono else "stereo", rate=AUDIO_RATE)
    for packet in inp.demux(src):
        for frame in packet.decode():
            for piece in resampler.resample(frame):
                piece.pts = None  # the encoder counts samples itself
                out.mux(dst.encode(piece))
    for piece in resampler.resample(None):
        piece.pts = None
        out.mux(dst.encode(piece))
    out.mux(dst.encode(None))


def _fit(width: int, height: int, edge: int) -> tuple[int, int]:
    """Scale to a long edge of at most ``edge``, even dimensions (yuv420p)."""
    scale = min(1.0, edge / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
