"""Both MediaStore implementations against the same contract.

The S3 half uses the minio SDK against a real moto S3 server on loopback,
and the contract again against s3rver (a second, unrelated S3 server) when
installed; presigned URLs are exercised with real HTTP requests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.core.errors import AppError, BadRequest, Forbidden
from app.core.storage import MediaStore, StorageError
from app.core.storage.local import LocalMediaStore
from app.core.storage.s3 import S3MediaStore
from tests import support
from tests.conftest import TEST_SECRET, make_s3_store

NOW = datetime.now(UTC)


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture(scope="session")
def s3rver(tmp_root: Path) -> Iterator[support.S3Server]:
    """A second S3 server (s3rver, from npm): the store keeps to the generic S3 API."""
    binary = support.s3rver_binary()
    if binary is None:
        pytest.skip("s3rver not installed (scripts/test.sh installs it with npm into .tools/)")
    server = support.start_s3rver(binary, tmp_root)
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3", "s3rver"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "local":
        st: MediaStore = LocalMediaStore(
            tmp_path / "media", secret=TEST_SECRET, public_base_url="http://testserver"
        )
    elif request.param == "s3rver":
        other: support.S3Server = request.getfixturevalue("s3rver")
        st = S3MediaStore(
            endpoint=other.endpoint,
            access_key=support.S3RVER_KEY,
            secret_key=support.S3RVER_KEY,
            bucket=f"t-{os.urandom(4).hex()}",
            secure=False,
            region="us-east-1",
            part_size=5 * 1024 * 1024,
        )
    else:
        server: support.S3Server = request.getfixturevalue("s3")
        st = make_s3_store(server, bucket=f"t-{os.urandom(4).hex()}")
    await st.start()
    return st


class TestContract:
    async def test_stream_of_unknown_length_round_trips(self, store: MediaStore) -> None:
        # Larger than one 5 MiB part, so S3 takes the multipart path.
        data = os.urandom(11 * 1024 * 1024 + 123)
        stored = await store.put_stream("m/2026/a.bin", chunks_of(data), content_type="video/mp4")
        assert stored.size == len(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        info = await store.stat("m/2026/a.bin")
        assert info is not None and info.size == len(data)
        assert await store.read_head("m/2026/a.bin", 16) == data[:16]
        got = b"".join([c async for c in store.iter_object("m/2026/a.bin")])
        assert got == data

    async def test_empty_body_is_stored_as_empty(self, store: MediaStore) -> None:
        stored = await store.put_stream("m/empty", chunks_of(b""), content_type="image/png")
        assert stored.size == 0

    async def test_missing_object_stat_is_none_and_delete_is_idempotent(
        self, store: MediaStore
    ) -> None:
        assert await store.stat("m/none") is None
        await store.delete("m/none")
        await store.put_stream("m/x", chunks_of(b"abc"), content_type="image/png")
        await store.delete("m/x")
        assert await store.stat("m/x") is None

    @pytest.mark.parametrize(
        "key", ["../etc/passwd", "/abs", "a/../../b", "a//b", "", "a/./b", "a\\b"]
    )
    async def test_unsafe_keys_are_refused(self, store: MediaStore, key: str) -> None:
        with pytest.raises(BadRequest):
            await store.put_stream(key, chunks_of(b"x"), content_type="image/png")

    async def test_check_passes_when_reachable(self, store: MediaStore) -> None:
        await store.check()

    async def test_any_rewrite_changes_the_etag_that_seals_a_hash(self, store: MediaStore) -> None:
        first = await store.put_stream("m/e.bin", chunks_of(b"one"), content_type="a/b")
        info = await store.stat("m/e.bin")
        assert first.etag and info is not None and info.etag == first.etag
        await store.put_stream("m/e.bin", chunks_of(b"two"), content_type="a/b")
        again = await store.stat("m/e.bin")
        assert again is not None and again.etag != first.etag

    async def test_list_prefix_lists_only_that_prefix(self, store: MediaStore) -> None:
        for key in ("l/2026/11/24/a", "l/2026/11/24/b", "l/2026/11/25/c", "other/d"):
            await store.put_stream(key, chunks_of(b"x"), content_type="a/b")
        listed = await store.list_prefix("l/2026/11/24/")
        assert sorted(o.key for o in listed) == ["l/2026/11/24/a", "l/2026/11/24/b"]
        assert all(o.size == 1 and o.last_modified is not None for o in listed)
        assert len(await store.list_prefix("l/", limit=2)) == 2

    async def test_failed_stream_leaves_nothing_behind(self, store: MediaStore) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield b"x" * 1000
            raise ConnectionResetError("client went away")

        with pytest.raises((ConnectionResetError, AppError)):
            await store.put_stream("m/broken", broken(), content_type="image/png")
        assert await store.stat("m/broken") is None


class TestS3Presigning:
    async def test_presigned_get_serves_the_object(self, s3: support.S3Server) -> None:
        store = make_s3_store(s3, bucket="presign-get")
        await store.start()
        await store.put_stream("p/a.jpg", chunks_of(b"hello"), content_type="image/jpeg")
        url = await store.presigned_get("p/a.jpg", expires_seconds=60, now=datetime.now(UTC))
        async with httpx.AsyncClient() as http:
            resp = await http.get(url)
        assert resp.status_code == 200 and resp.content == b"hello"

    async def test_objects_are_private_without_a_signature(self, s3: support.S3Server) -> None:
        store = make_s3_store(s3, bucket="presign-private")
        await store.start()
        await store.put_stream("p/a.jpg", chunks_of(b"secret"), content_type="image/jpeg")
        url = await store.presigned_get("p/a.jpg", expires_seconds=60, now=datetime.now(UTC))
        async with httpx.AsyncClient() as http:
            resp = await http.get(url.split("?")[0])
        assert resp.status_code == 403

    async def test_presigned_post_uploads_and_its_policy_fixes_key_type_and_size(
        self, s3: support.S3Server
    ) -> None:
        store = make_s3_store(s3, bucket="presign-post")
        await store.start()
        ticket = await store.presigned_post(
            "u/ticket-1.mp4",
            content_type="video/mp4",
            min_size=1,
            max_size=1024,
            expires_seconds=300,
            now=datetime.now(UTC),
        )
        assert ticket.fields["key"] == "u/ticket-1.mp4"
        assert ticket.url.endswith("/presign-post")
        async with httpx.AsyncClient() as http:
            ok = await http.post(
                ticket.url, data=ticket.fields, files={"file": ("v.mp4", b"x" * 100)}
            )
        assert ok.status_code in (200, 201, 204), ok.text
        info = await store.stat("u/ticket-1.mp4")
        assert info is not None and info.size == 100
        # moto stores POSTs without enforcing the policy (MinIO and S3 do), so
        # check the signed policy document itself; /media/{id}/complete checks
        # the stored object again on our side.
        policy = json.loads(base64.b64decode(ticket.fields["policy"]))
        conditions = policy["conditions"]
        assert ["eq", "$key", "u/ticket-1.mp4"] in conditions
        assert ["eq", "$Content-Type", "video/mp4"] in conditions
        assert ["content-length-range", 1, 1024] in conditions
        assert ["eq", "$bucket", "presign-post"] in conditions

    async def test_public_endpoint_is_used_for_signing(self, s3: support.S3Server) -> None:
        store = S3MediaStore(
            endpoint=s3.endpoint,
            access_key="testing",
            secret_key="testing",
            bucket="pub",
            secure=False,
            region="us-east-1",
            public_endpoint="https://media.example.cn",
        )
        url = await store.presigned_get("a/b.jpg", expires_seconds=60, now=datetime.now(UTC))
        assert url.startswith("https://media.example.cn/pub/a/b.jpg?")
        post = await store.presigned_post(
            "a/b.jpg",
            content_type="image/jpeg",
            min_size=1,
            max_size=10,
            expires_seconds=60,
            now=datetime.now(UTC),
        )
        assert post.url == "https://media.example.cn/pub"

    async def test_unreachable_server_is_a_storage_error(self) -> None:
        store = S3MediaStore(
            endpoint=f"127.0.0.1:{support.free_port()}",
            access_key="a",
            secret_key="b",
            bucket="x",
            secure=False,
            region="us-east-1",
        )
        with pytest.raises(StorageError):
            await store.check()


class TestLocalSigning:
    @pytest.fixture
    def local(self, tmp_path: Path) -> Iterator[LocalMediaStore]:
        yield LocalMediaStore(tmp_path, secret=TEST_SECRET, public_base_url="http://testserver")

    async def test_presigned_get_verifies_and_expires(self, local: LocalMediaStore) -> None:
        url = await local.presigned_get("a/b.jpg", expires_seconds=60, now=NOW)
        query = dict(p.split("=") for p in url.split("?")[1].split("&"))
        exp, sig = int(query["exp"]), query["sig"]
        assert local.verify_get("a/b.jpg", exp, sig, now=NOW).name == "b.jpg"
        with pytest.raises(Forbidden):
            local.verify_get("a/b.jpg", exp, sig, now=NOW + timedelta(seconds=61))
        with pytest.raises(Forbidden):
            local.verify_get("a/other.jpg", exp, sig, now=NOW)

    async def test_post_policy_is_signed(self, local: LocalMediaStore) -> None:
        ticket = await local.presigned_post(
            "u/x.mp4",
            content_type="video/mp4",
            min_size=1,
            max_size=10,
            expires_seconds=60,
            now=NOW,
        )
        policy = local.verify_post_policy(
            ticket.fields["policy"], ticket.fields["signature"], now=NOW
        )
        assert (policy["key"], policy["max"]) == ("u/x.mp4", 10)
        with pytest.raises(Forbidden):
            local.verify_post_policy(ticket.fields["policy"], "0" * 64, now=NOW)
        with pytest.raises(Forbidden):
            local.verify_post_policy(
                ticket.fields["policy"], ticket.fields["signature"], now=NOW + timedelta(hours=1)
            )


class FrozenServer:
    """A loopback TCP server that accepts connections and never answers:
    what a hung MinIO looks like from the client."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._held.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._sock.close()


def frozen_store(port: int, *, deadline: float = 1.0, read_timeout: float = 30.0) -> S3MediaStore:
    return S3MediaStore(
        endpoint=f"127.0.0.1:{port}",
        access_key="testing",
        secret_key="testing",
        bucket="frozen",
        secure=False,
        region="us-east-1",
        deadline_seconds=deadline,
        connect_timeout=1.0,
        read_timeout=read_timeout,
    )


@pytest.fixture
def frozen() -> Iterator[FrozenServer]:
    server = FrozenServer()
    yield server
    server.close()


class TestDeadlines:
    """A frozen server costs a call its deadline, not the SDK's minutes of retries."""

    async def test_every_call_to_a_frozen_server_gives_up_at_its_deadline(
        self, frozen: FrozenServer
    ) -> None:
        store = frozen_store(frozen.port, deadline=1.0)
        calls = [
            store.check(),
            store.stat("m/a.jpg"),
            store.read_head("m/a.jpg", 16),
            store.delete("m/a.jpg"),
            store.put_stream("m/a.jpg", chunks_of(b"x" * 4096), content_type="image/jpeg"),
            store.list_prefix("m/"),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StorageError) as caught:
                await call
            elapsed = time.monotonic() - started
            assert 0.9 < elapsed < 3.5, elapsed
            assert caught.value.status_code == 503
            assert caught.value.headers == {"Retry-After": "30"}
            assert "127.0.0.1" not in caught.value.detail  # no internal host in the answer

    async def test_a_stream_buys_time_by_the_bytes_it_moves(self, s3: support.S3Server) -> None:
        """The deadline is base + bytes / rate: a healthy multi-part upload that
        takes longer than the base alone is not cut short."""
        store = S3MediaStore(
            endpoint=s3.endpoint,
            access_key="testing",
            secret_key="testing",
            bucket=f"slow-{os.urandom(3).hex()}",
            secure=False,
            region="us-east-1",
            part_size=5 * 1024 * 1024,
            deadline_seconds=1.0,
            min_bytes_per_second=1024 * 1024,
        )
        await store.start()

        async def slow(data: bytes) -> AsyncIterator[bytes]:
            for i in range(0, len(data), 256 * 1024):
                await asyncio.sleep(0.05)  # 2.2 s in all: twice the base deadline
                yield data[i : i + 256 * 1024]

        data = os.urandom(11 * 1024 * 1024)
        started = time.monotonic()
        stored = await store.put_stream("m/slow.bin", slow(data), content_type="video/mp4")
        assert time.monotonic() - started > 2.0  # longer than the base deadline alone
        assert stored.sha256 == hashlib.sha256(data).hexdigest()

    async def test_a_write_that_lands_after_its_deadline_is_taken_back(
        self, tmp_root: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """moto frozen (SIGSTOP) mid-upload: the call answers 503 at its
        deadline; when moto wakes and stores the object anyway, the abandoned
        thread deletes it, so a 503 leaves no object behind."""
        server = support.start_moto(tmp_root)
        try:
            store = S3MediaStore(
                endpoint=server.endpoint,
                access_key="testing",
                secret_key="testing",
                bucket="late",
                secure=False,
                region="us-east-1",
                deadline_seconds=1.0,
                read_timeout=20.0,
            )
            await store.start()
            await store.put_stream("m/warm", chunks_of(b"w"), content_type="image/png")
            caplog.set_level(logging.INFO, logger="app.core.storage.s3")
            server.process.send_signal(signal.SIGSTOP)
            try:
                with pytest.raises(StorageError):
                    await store.put_stream(
                        "m/late.jpg", chunks_of(b"x" * 50_000), content_type="image/jpeg"
                    )
            finally:
                server.process.send_signal(signal.SIGCONT)
            for _ in range(200):
                if any("taken back" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
            assert any("taken back" in r.getMessage() for r in caplog.records)
            assert await store.stat("m/late.jpg") is None
            assert await store.stat("m/warm") is not None
        finally:
            server.stop()
