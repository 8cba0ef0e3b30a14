"""Item search and free-text suggestion over one taxonomy version, in memory.

517 items fit comfortably in each worker's memory, so the index is built once
per version and process. Suggestion is BM25 over three token kinds:

* jieba words (search mode), for the ordinary case;
* Chinese character bigrams, which survive words jieba splits differently;
* pinyin syllable bigrams, which survive homophone typos (低宝 → 低保).

Each item document is its name (weighted most), keywords, category name and
the positive part of its guidance (the "不含…" part names *other* items and
would pull them in, so it is dropped).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import jieba
from pypinyin import Style, lazy_pinyin

from app.reference.loader import pinyin_initials

logger = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)
_jieba_lock = threading.Lock()

_CJK = re.compile(r"[\u4e00-\u9fff]+")
_NOT_PART = re.compile(r"(不含|不包括|不属于|不适用)")
_STOP = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "我",
        "我们",
        "他",
        "他们",
        "你",
        "有",
        "和",
        "就",
        "都",
        "也",
        "还",
        "又",
        "被",
        "把",
        "给",
        "让",
        "说",
        "要",
        "会",
        "能",
        "到",
        "去",
        "来",
        "这",
        "那",
        "个",
        "一",
        "不",
        "没",
        "没有",
        "啥",
        "啥子",
        "咋个",
        "莫得",
        "晓得",
        "哦",
        "嘛",
        "呢",
        "吧",
        "啊",
        "呀",
        "喊",
        "整",
        "遭",
        "一下",
        "请问",
        "问下",
        "反映",
        "情况",
        "问题",
        "希望",
        "领导",
        "帮忙",
        "处理",
        "什么",
        "怎么",
        "为什么",
        "现在",
        "已经",
        "一直",
        "还是",
        "可以",
        "但是",
        "然后",
        "因为",
        "所以",
        "这个",
        "那个",
        "就是",
    ]
)
_FIELD_WEIGHTS = {"name": 3.0, "keywords": 2.5, "category": 1.0, "guidance": 1.0}
_KIND_WEIGHTS = {"w": 1.0, "c": 0.6, "p": 0.35, "u": 0.4}
K1, B = 1.2, 0.75
_STOP_CHARS = frozenset(
    "的了是在我们他你有和就都也还又被把给让说要会能到去来这那个一不没啥咋哦嘛呢吧啊呀喊整遭么"
)

# Sichuan speech → the words the taxonomy is written in. Appended, not
# replaced, so the original words still count.
_DIALECT = {
    "莫得": "没有",
    "没得": "没有",
    "屋头": "家里",
    "屋里": "家里",
    "娃儿": "孩子 学生",
    "老汉": "父亲 老人",
    "婆婆": "老人",
    "遭": "被",
    "晓得": "知道",
    "咋个": "怎么",
    "啥子": "什么",
    "摆起": "放着",
    "拖起": "拖延",
    "要不得": "不合理",
    "整": "弄",
    "喊": "叫",
    "哪个": "谁",
    "耍": "玩",
    "恼火": "困难",
    "安逸": "好",
    "打整": "处理",
    "垮": "倒塌",
    "弄起": "做",
    "撇脱": "简单",
    "巴适": "好",
    "克扣": "扣钱",
}

# Cues of misconduct by officials lean towards accusation items; questions
# lean towards policy consultation. Multipliers, so text similarity still rules.
_ACCUSATION_CUES = (
    "亲戚",
    "老表",
    "舅子",
    "亲家",
    "关系户",
    "塞了钱",
    "塞钱",
    "送钱",
    "红包",
    "好处",
    "回扣",
    "请吃",
    "吃了好几顿",
    "通风报信",
    "通风抱信",
    "包庇",
    "贪",
    "挪用",
    "截留",
    "冒领",
    "私吞",
    "中饱私囊",
    "揣进",
    "腰包",
    "收了钱",
    "吃拿卡要",
    "优亲厚友",
    "暗箱",
    "内定",
    "提前定好",
    "打招呼",
    "保护伞",
    "勾结",
    "捞",
    "虚报",
    "套取",
    "骗取",
)
_QUESTION_CUES = (
    "吗",
    "？",
    "?",
    "能不能",
    "可不可以",
    "要不要",
    "需不需要",
    "需要什么",
    "需要带",
    "怎么办",
    "咋个办",
    "咋个申请",
    "怎么申请",
    "去哪里办",
    "在哪里办",
    "什么条件",
    "啥子条件",
    "符合条件",
    "不晓得",
    "不知道",
    "请问",
    "问一下",
    "问下",
    "有没有政策",
    "标准是",
)
INTENT_BOOST = 1.35


def normalise(text: str) -> str:
    extra = [std for word, std in _DIALECT.items() if word in text]
    return text + (" " + " ".join(extra) if extra else "")


def intent_of(text: str) -> set[str]:
    intents: set[str] = set()
    if any(c in text for c in _ACCUSATION_CUES):
        intents.add("accusation")
    if any(c in text for c in _QUESTION_CUES):
        intents.add("consultation")
    return intents


class Reranker(Protocol):
    """The learned model (``model.TextModel``), seen from here without importing it."""

    fusion_weight: float

    def relative(self, text: str, query: Counter[str] | None = None) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class IndexedItem:
    code: str
    name: str
    category_code: str
    category_name: str
    keywords: tuple[str, ...]
    guidance: str
    pinyin_initials: str
    klass: str = "complaint"


@dataclass(frozen=True, slots=True)
class Suggestion:
    code: str
    name: str
    category_code: str
    category_name: str
    score: float
    matched: tuple[str, ...]


def positive_guidance(text: str) -> str:
    m = _NOT_PART.search(text)
    return text[: m.start()] if m else text


def _words(text: str) -> list[str]:
    with _jieba_lock:  # jieba's lazy initialisation is not thread-safe
        words = jieba.lcut_for_search(text)
    return [
        w for w in (w.strip().lower() for w in words) if w and w not in _STOP and not w.isspace()
    ]


def _char_bigrams(text: str) -> list[str]:
    out: list[str] = []
    for run in _CJK.findall(text):
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def _pinyin_bigrams(text: str) -> list[str]:
    out: list[str] = []
    for run in _CJK.findall(text):
        syl = lazy_pinyin(run, style=Style.NORMAL)
        out.extend(f"{syl[i]}_{syl[i + 1]}" for i in range(len(syl) - 1))
    return out


def tokens(text: str) -> Counter[str]:
    bag: Counter[str] = Counter()
    bag.update(f"w:{w}" for w in _words(text) if len(w) > 1 or not _CJK.fullmatch(w))
    bag.update(f"c:{b}" for b in _char_bigrams(text))
    bag.update(f"p:{b}" for b in _pinyin_bigrams(text))
    bag.update(f"u:{ch}" for run in _CJK.findall(text) for ch in run if ch not in _STOP_CHARS)
    return bag


@dataclass
class _Doc:
    item: IndexedItem
    tf: dict[str, float]
    length: float
    lookup: list[str] = field(default_factory=list)
    initials: list[str] = field(default_factory=list)
    full_pinyin: list[str] = field(default_factory=list)


class TaxonomyIndex:
    def __init__(self, items: Iterable[IndexedItem]) -> None:
        self.docs: list[_Doc] = []
        df: Counter[str] = Counter()
        for it in items:
            tf: dict[str, float] = {}
            fields = {
                "name": it.name,
                "keywords": " ".join(it.keywords),
                "category": it.category_name,
                "guidance": positive_guidance(it.guidance),
            }
            for fname, text in fields.items():
                for tok, n in tokens(text).items():
                    tf[tok] = tf.get(tok, 0.0) + n * _FIELD_WEIGHTS[fname]
            phrases = [it.name, *it.keywords, it.category_name]
            doc = _Doc(
                item=it,
                tf=tf,
                length=sum(tf.values()),
                lookup=[p.lower() for p in phrases],
                initials=[pinyin_initials(p) for p in phrases],
                full_pinyin=["".join(lazy_pinyin(p, style=Style.NORMAL)) for p in phrases],
            )
            self.docs.append(doc)
            df.update(tf.keys())
        self._pos = {d.item.code: i for i, d in enumerate(self.docs)}
        n = max(len(self.docs), 1)
        self.avg_len = sum(d.length for d in self.docs) / n
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        # Postings with each document's whole BM25 term weight precomputed, so a
        # query touches only the documents that share a token with it.
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for i, doc in enumerate(self.docs):
            lnorm = K1 * (1 - B + B * doc.length / self.avg_len)
            for tok, f in doc.tf.items():
                w = self.idf[tok] * f * (K1 + 1) / (f + lnorm) * _KIND_WEIGHTS[tok[0]]
                self.postings.setdefault(tok, []).append((i, w))

    def __len__(self) -> int:
        return len(self.docs)

    def suggest(
        self, text: str, *, limit: int = 5, model: Reranker | None = None
    ) -> list[Suggestion]:
        """BM25, fused with the learned model when one is given (``model.py``)."""
        query = tokens(normalise(text))
        if not query:
            return []
        intents = intent_of(text)
        acc: dict[int, float] = {}
        words: dict[int, list[str]] = {}
        for tok, qn in query.items():
            posting = self.postings.get(tok)
            if not posting:
                continue
            boost = 1 + math.log(qn)
            for i, w in posting:
                acc[i] = acc.get(i, 0.0) + w * boost
                if tok.startswith("w:"):
                    words.setdefault(i, []).append(tok[2:])
        bm25: dict[str, float] = {}
        matched_by: dict[str, list[str]] = {}
        for i, score in acc.items():
            if score <= 0:
                continue
            item = self.docs[i].item
            bm25[item.code] = score * INTENT_BOOST if item.klass in intents else score
            matched_by[item.code] = words.get(i, [])
        if not bm25:  # nothing in the text an item shares (punctuation, latin noise)
            return []
        scores = bm25
        if model is not None:
            best_bm25 = max(bm25.values(), default=0.0) or 1.0
            w = model.fusion_weight
            scores = {code: (1 - w) * s / best_bm25 for code, s in bm25.items()}
            for code, p in model.relative(text, query).items():
                if code in self._pos:
                    scores[code] = scores.get(code, 0.0) + w * p
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        if not ranked or ranked[0][1] <= 0:
            return []
        best = ranked[0][1]
        out: list[Suggestion] = []
        for code, s in ranked:
            it = self.docs[self._pos[code]].item
            out.append(
                Suggestion(
                    code=it.code,
                    name=it.name,
                    category_code=it.category_code,
                    category_name=it.category_name,
                    score=round(s / best, 4),
                    matched=tuple(dict.fromkeys(matched_by.get(code, ())))[:8],
                )
            )
        return out

    def search(self, q: str, *, limit: int = 20) -> list[IndexedItem]:
        """Substring match on Chinese text, or pinyin initials / full pinyin for latin input."""
        q = q.strip().lower()
        if not q:
            return []
        latin = q.isascii() and q.replace(" ", "").isalpha()
        compact = q.replace(" ", "")
        ranked: list[tuple[int, int, str, IndexedItem]] = []
        for pos, doc in enumerate(self.docs):
            rank = self._rank(doc, q, compact, latin)
            if rank is not None:
                ranked.append((rank, pos, doc.item.code, doc.item))
        ranked.sort()
        return [r[3] for r in ranked[:limit]]

    @staticmethod
    def _rank(doc: _Doc, q: str, compact: str, latin: bool) -> int | None:
        name = doc.lookup[0]
        if q == name:
            return 0
        if name.startswith(q):
            return 1
        if q in name:
            return 2
        if any(q in p for p in doc.lookup[1:]):
            return 3
        if latin:
            if doc.initials[0].startswith(compact):
                return 4
            if any(compact in p for p in doc.initials):
                return 5
            if any(p.startswith(compact) for p in doc.full_pinyin) and len(compact) >= 3:
                return 6
        if q in doc.item.guidance:
            return 7
        return None
