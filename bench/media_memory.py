"""Peak RSS of the app while a large video streams through POST /media, and the
bytes the app reads during a direct (presigned) upload.

Starts its own uvicorn (embedded SQLite + a storage backend) and, for the
direct case, a moto S3 server; samples the server's VmRSS from /proc every
20 ms. Usage: python -m bench.media_memory [--mb 300] [--out bench/results/media_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import keys as bench_keys  # noqa: E402
from tests.mediafiles import mp4  # noqa: E402
from tests.support import alembic_upgrade, free_port, start_moto, wait_for_port  # noqa: E402

CHUNK = 1024 * 1024


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def read_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_flag = pid, 0, False

    def run(self) -> None:
        while not self.stop_flag:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)


def start_app(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 30)
    return proc, f"http://127.0.0.1:{port}"


def multipart_stream(total: int, boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nvideo\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    head = mp4(0)
    yield head
    sent, block = len(head), b"\x00" * CHUNK
    while sent < total:
        n = min(CHUNK, total - sent)
        yield block[:n]
        sent += n
    yield f"\r\n--{boundary}--\r\n".encode()


def measure_streamed(mb: int, work: Path) -> dict[str, object]:
    db = work / "bench.db"
    env = {
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "YDT_MEDIA_DIR": str(work / "media"),
        "YDT_SECRET_FILE": str(work / "secret"),
        "YDT_KEY_DIR": str(work / "keys"),
        "YDT_DEV_LOGIN_ENABLED": "true",
        "YDT_MEDIA_MAX_VIDEO_BYTES": str((mb + 10) * 1024 * 1024),
        "YDT_LOG_LEVEL": "WARNING",
        "TMPDIR": str(work),
    }
    alembic_upgrade(env["YDT_DATABASE_URL"])
    proc, base = start_app(env)
    try:
        with httpx.Client(base_url=base, timeout=600) as http:
            token = http.post("/api/v1/auth/dev-login", json={"openid": "bench"}).json()[
                "access_token"
            ]
            for _ in range(3):  # warm up imports and the first request paths
                http.get("/healthz")
            time.sleep(0.5)
            baseline = rss_kb(proc.pid)
            sampler = Sampler(proc.pid)
            sampler.start()
            boundary = uuid.uuid4().hex
            started = time.perf_counter()
            resp = http.post(
                "/api/v1/media",
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
                content=multipart_stream(mb * 1024 * 1024, boundary),
            )
            elapsed = time.perf_counter() - started
            sampler.stop_flag = True
            sampler.join()
        assert resp.status_code == 201, resp.text
        return {
            "upload_mb": mb,
            "status": resp.status_code,
            "stored_bytes": resp.json()["size"],
            "rss_baseline_mb": round(baseline / 1024, 1),
            "rss_peak_mb": round(sampler.peak / 1024, 1),
            "rss_growth_mb": round((sampler.peak - baseline) / 1024, 1),
            "seconds": round(elapsed, 2),
            "throughput_mb_s": round(mb / elapsed, 1),
        }
    finally:
        proc.terminate()
        proc.wait(10)


def measure_direct(mb: int, work: Path) -> dict[str, object]:
    s3 = start_moto(work)
    env = {
        "YDT_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'direct.db'}",
        "YDT_STORAGE": "s3",
        "YDT_S3_ENDPOINT": s3.endpoint,
        "YDT_S3_ACCESS_KEY": "testing",
        "YDT_S3_SECRET_KEY": "testing",
        "YDT_S3_BUCKET": "bench",
        "YDT_JWT_SECRET": "bench-secret-0123456789abcdef",
        **bench_keys.ENV,
        "YDT_DEV_LOGIN_ENABLED": "true",
        "YDT_MEDIA_MAX_VIDEO_BYTES": str((mb + 10) * 1024 * 1024),
        "YDT_LOG_LEVEL": "WARNING",
    }
    alembic_upgrade(env["YDT_DATABASE_URL"])
    proc, base = start_app(env)
    try:
        with httpx.Client(base_url=base, timeout=600) as http:
            token = http.post("/api/v1/auth/dev-login", json={"openid": "bench"}).json()[
                "access_token"
            ]
            h = {"Authorization": f"Bearer {token}"}
            size = mb * 1024 * 1024
            ticket = http.post(
                "/api/v1/media/upload-tickets",
                headers=h,
                json={"kind": "video", "content_type": "video/mp4", "size": size},
            ).json()
            before = read_bytes(proc.pid)
            head = mp4(0)
            body = head + b"\x00" * (size - len(head))
            with httpx.Client(timeout=600) as phone:
                sent = phone.post(
                    ticket["url"],
                    data=ticket["fields"],
                    files={"file": ("v.mp4", body, "video/mp4")},
                )
            del body
            during_upload = read_bytes(proc.pid) - before
            done = http.post(f"/api/v1/media/{ticket['media_id']}/complete", headers=h)
            total = read_bytes(proc.pid) - before
        assert sent.status_code in (200, 201, 204) and done.status_code == 200, done.text
        return {
            "upload_mb": mb,
            "app_bytes_read_during_upload": during_upload,
            "app_bytes_read_including_complete": total,
            "media_bytes_through_app": 0 if during_upload < 64 * 1024 else during_upload,
            "stored_size": done.json()["size"],
        }
    finally:
        proc.terminate()
        proc.wait(10)
        s3.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "media_memory.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
        result = {
            "machine": f"{os.cpu_count()} cores, {memory_gib} GiB",
            "streamed": measure_streamed(args.mb, work),
            "direct": measure_direct(args.mb, work),
            "goal": "streamed RSS growth <= 64 MB; no media bytes through the app when direct",
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
