from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import DEFAULT_DATABASE_URL, ConfigurationError, Settings


def bare(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[arg-type]


class TestEmbeddedDefault:
    def test_no_settings_means_sqlite_under_var_and_local_media(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for key in list(__import__("os").environ):
            if key.startswith("YDT_"):
                monkeypatch.delenv(key)
        s = bare()
        assert s.database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./var/yidiantong.db"
        assert s.storage == "local"
        assert s.media_dir == Path("./var/media")
        assert s.is_embedded
        assert s.sqlite_path() == Path("./var/yidiantong.db")

    def test_embedded_generates_and_keeps_a_secret(self, tmp_path: Path) -> None:
        s = bare(secret_file=tmp_path / "secret")
        first = s.resolved_jwt_secret()
        assert len(first) >= 32
        assert s.resolved_jwt_secret() == first
        assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


class TestRefusals:
    def test_postgres_without_jwt_secret_refuses_with_a_clear_message(self) -> None:
        s = bare(database_url="postgresql+asyncpg://u@h/db")
        with pytest.raises(ConfigurationError, match="YDT_JWT_SECRET is not set"):
            s.resolved_jwt_secret()

    def test_s3_storage_without_jwt_secret_refuses(self) -> None:
        with pytest.raises(ConfigurationError):
            bare(storage="s3").resolved_jwt_secret()

    def test_production_on_sqlite_still_needs_a_secret(self) -> None:
        with pytest.raises(ConfigurationError):
            bare(env="production").resolved_jwt_secret()

    def test_dev_login_is_refused_in_production(self) -> None:
        with pytest.raises(ValueError, match="DEV_LOGIN"):
            bare(env="production", dev_login_enabled=True, jwt_secret="x" * 32)

    def test_env_prefix_is_ydt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("YDT_S3_BUCKET", "from-env")
        monkeypatch.setenv("YDT_STORAGE", "s3")
        s = bare()
        assert (s.s3_bucket, s.storage) == ("from-env", "s3")

    def test_unknown_storage_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            bare(storage="ftp")


class TestPastOneMachine:
    PG = "postgresql+asyncpg://ydt@db:5432/ydt"

    def test_a_replica_is_a_postgresql_url_beside_a_postgresql_primary(self) -> None:
        s = bare(database_url=self.PG, database_replica_url="postgresql+asyncpg://ydt@r/ydt")
        assert s.database_replica_url == "postgresql+asyncpg://ydt@r/ydt"
        assert bare(database_url=self.PG, database_replica_url="").database_replica_url is None

    @pytest.mark.parametrize("url", ["sqlite+aiosqlite:///r.db", "mysql://r/ydt", "r:5432"])
    def test_a_replica_that_is_not_postgresql_is_refused(self, url: str) -> None:
        with pytest.raises(ValueError, match="YDT_DATABASE_REPLICA_URL"):
            bare(database_url=self.PG, database_replica_url=url)

    def test_a_replica_of_the_embedded_sqlite_is_refused(self) -> None:
        with pytest.raises(ValueError, match="needs a PostgreSQL YDT_DATABASE_URL"):
            bare(database_replica_url="postgresql+asyncpg://ydt@r/ydt")

    @pytest.mark.parametrize("lag", [-1, 3601])
    def test_a_lag_bound_out_of_range_is_refused(self, lag: float) -> None:
        with pytest.raises(ValueError, match="database_replica_max_lag_seconds"):
            bare(database_replica_max_lag_seconds=lag)

    def test_a_notice_lease_must_outlast_one_send(self) -> None:
        assert bare(notify_lease_seconds=10, wechat_timeout_seconds=5).notify_lease_seconds == 10
        with pytest.raises(ValueError, match="YDT_NOTIFY_LEASE_SECONDS"):
            bare(notify_lease_seconds=5, wechat_timeout_seconds=5)
        with pytest.raises(ValueError, match="notify_lease_seconds"):
            bare(notify_lease_seconds=1)
