"""The identity, chain and checkpoint keys the bench's app processes run with (outside the
embedded default the app refuses to start without them), and the same keys
for the rows the bench writes itself (residents' sealed openids)."""

from __future__ import annotations

from app.core import crypto
from app.core.keys import Keyring
from app.models.citizen import OPENID

KEK_ID = "kbench"
KEK = "bench-kek-0123456789-abcdefghijklmnopqrstuv"
CHAIN = "bench-chain-0123456789-abcdefghijklmnopqrstuv"
INDEX = "bench-index-0123456789-abcdefghijklmnopqrstuv"
# The checkpoint signing key `ydt worker` refuses to start without (an Ed25519
# seed as 64 hex digits).
AUDIT_SEED = "b3" * 32
ENV = {
    "YDT_IDENTITY_KEYS": f"{KEK_ID}:{KEK}",
    "YDT_CHAIN_KEY": CHAIN,
    "YDT_INDEX_KEY": INDEX,
    "YDT_AUDIT_SIGNING_KEY": AUDIT_SEED,
}
KEYRING = Keyring.build(
    keks={KEK_ID: KEK.encode()}, active=KEK_ID, chain=CHAIN.encode(), index=INDEX.encode()
)
CITIZEN_COLUMNS = [
    "id",
    "openid_index",
    "openid_sealed",
    "region_code",
    "created_at",
    "last_login_at",
]


def citizen_identity(openid: str) -> tuple[str, str]:
    """(openid_index, openid_sealed) as app.models.Citizen.set_openid writes them."""
    index = crypto.blind(KEYRING, OPENID, openid)
    return index, crypto.seal(KEYRING, openid.encode(), aad=f"{OPENID}:{index}")
