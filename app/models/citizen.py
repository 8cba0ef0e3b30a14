from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core import crypto, keys
from app.core.db import Base

OPENID = "citizen-openid"
UNIONID = "citizen-unionid"


class Citizen(Base):
    """A resident known by their WeChat identity (openid, unionid when bound).

    Neither is stored in the clear (issue 13): a dump must not hand out the
    WeChat identities of the people who accuse cadres. Logins find a resident
    by keyed blind index; the openid itself is sealed, because subscribe
    messages and content checks must send it back to WeChat.
    """

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid_index: Mapped[str] = mapped_column(String(64), unique=True)
    openid_sealed: Mapped[str] = mapped_column(Text)
    unionid_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime]

    @staticmethod
    def index_openid(openid: str) -> str:
        return crypto.blind(keys.current(), OPENID, openid)

    @staticmethod
    def index_unionid(unionid: str) -> str:
        return crypto.blind(keys.current(), UNIONID, unionid)

    def set_openid(self, openid: str) -> None:
        self.openid_index = self.index_openid(openid)
        # Bound to its index: a sealed openid copied onto another row does not open.
        self.openid_sealed = crypto.seal(
            keys.current(), openid.encode(), aad=f"{OPENID}:{self.openid_index}"
        )

    @property
    def openid(self) -> str:
        """The WeChat openid, unsealed with this process's keys."""
        return crypto.unseal(
            keys.current(), self.openid_sealed, aad=f"{OPENID}:{self.openid_index}"
        ).decode()


class SharedState(Base):
    """Counters and cached values shared by every worker when Redis is absent."""

    __tablename__ = "shared_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    counter: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]
