"""Password policy for staff accounts: long enough, and not guessable.

Guessability is judged by zxcvbn (Dropbox's estimator, PyPI ``zxcvbn``), not
by composition rules: ``Password1`` has every character class and is among
the first guesses of any attacker, while a long passphrase of plain words is
strong. zxcvbn also knows keyboard walks, dates, repeats and l33t spellings
(``Passw0rd``), and is given the words an attacker of this system would try
first: the account's own username, name, phone and unit (also in pinyin),
and the product's names (监督一点通, yidiantong, ydt, 达州 ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pypinyin import Style, lazy_pinyin
from zxcvbn import zxcvbn

from app.staff.exceptions import WeakPassword

MIN_LENGTH = 8
# zxcvbn's scale 0-4; 3 is "safely unguessable: moderate protection from an
# offline slow-hash scenario" (about 10^8 guesses and more).
MIN_SCORE = 3
# zxcvbn's matching grows faster than linearly with length; a longer password
# is judged on its first characters (which are then strong enough alone).
_JUDGED_CHARS = 64

PRODUCT_WORDS = (
    "监督一点通",
    "一点通",
    "yidiantong",
    "jianduyidiantong",
    "jiandu",
    "ydt",
    "jdydt",
    "dazhou",
    "达州",
    "jiwei",
    "jijian",
    "jiancha",
    "jiweijianwei",
    "jijianjiancha",
    "admin",
    "mima",
    "password",
)

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_SEPARATORS = re.compile(r"[\s._\-@/]+")

WEAK_MESSAGE = (
    "密码太容易被猜到（常见密码、键盘顺序、日期、重复字符，或含用户名、姓名、单位、"
    "系统名称等），请换一个更长、更不规律的密码，例如几个不相关的词加数字和符号"
)


def _variants(text: str) -> set[str]:
    text = text.strip().lower()
    if not text:
        return set()
    out = {text, *(p for p in _SEPARATORS.split(text) if len(p) >= 2)}
    for run in _CJK_RUN.findall(text):
        # The whole name and its pieces (凤北街道纪工委 → fengbei, jiedao, ...),
        # in full pinyin and initials: people build passwords from place names.
        syllables = lazy_pinyin(run)
        initials = lazy_pinyin(run, style=Style.FIRST_LETTER)
        out.add("".join(syllables))
        out.add("".join(initials))
        out |= {s for s in syllables if len(s) >= 3}
        for size in range(2, min(4, len(run)) + 1):
            for start in range(len(run) - size + 1):
                out.add("".join(syllables[start : start + size]))
    return out


def context_words(texts: Iterable[str | None]) -> list[str]:
    """The words an attacker would try first, for this account."""
    words: set[str] = set()
    for text in (*PRODUCT_WORDS, *texts):
        if text:
            words |= _variants(text)
    return sorted(words)


def check(password: str, *, context: Iterable[str | None] = ()) -> None:
    """Refuse a password that is short or guessable, with a Chinese message."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"密码至少 {MIN_LENGTH} 位")
    result = zxcvbn(password[:_JUDGED_CHARS], user_inputs=context_words(context))
    if int(result["score"]) < MIN_SCORE:
        raise WeakPassword(WEAK_MESSAGE)
