"""Structured rows of a 村务公开 disclosure: shapes, checks, masking, xlsx import.

Pure on purpose (no database, no HTTP) so the same rules apply to a JSON body, a
spreadsheet upload and a re-check of stored rows. Money is Decimal end to end;
floats only ever appear as input and are converted at the door.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from app.core.errors import AppError
from app.models.enums import DisclosureCategory

MAX_ROWS = 2000
MAX_MONEY = Decimal("1000000000000")
CENT = Decimal("0.01")
# An Excel float this close to a whole number of fen is binary noise (0.1+0.2), not data.
FLOAT_NOISE = Decimal("1e-9")
BAD_DATE = "格式不正确（如 2024-03-01）"

# --- errors ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 0 = the file or the request as a whole
    field: str | None  # None = the row as a whole
    message: str


class InvalidRows(AppError):
    """All-or-nothing: one bad row rejects the batch, and every problem is listed at once."""

    status_code, code = 400, "invalid_rows"

    def __init__(self, errors: Sequence[RowError], *, detail: str | None = None) -> None:
        self.errors = sorted(errors, key=lambda e: e.row)
        super().__init__(
            detail or _summary(self.errors), extra={"rows": [asdict(e) for e in self.errors]}
        )


def _summary(errors: Sequence[RowError]) -> str:
    rows = sorted({e.row for e in errors if e.row > 0})
    if not rows:
        return "；".join(dict.fromkeys(e.message for e in errors)) or "数据有误"
    shown = "、".join(str(r) for r in rows[:10])
    if len(rows) > 10:
        shown += f" 等 {len(rows)}"
    return f"第 {shown} 行有误，未导入任何数据"


# --- value coercion shared by JSON and xlsx input -----------------------------


def decimal_from_number(value: float | int) -> Decimal:
    """Exact for ints; for floats, snap binary noise to fen but keep real extra digits
    so they are rejected rather than silently rounded."""
    if isinstance(value, int):
        return Decimal(value)
    d = Decimal(str(value))
    exponent = d.as_tuple().exponent
    if not isinstance(exponent, int) or exponent >= -2:  # NaN and infinity fail later
        return d
    q = d.quantize(CENT)
    return q if abs(d - q) <= FLOAT_NOISE else d


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def _coerce_money(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("应为数字金额")
    if isinstance(v, float):
        return decimal_from_number(v)
    if isinstance(v, str):
        s = unicodedata.normalize("NFKC", v).strip().removeprefix("¥").removesuffix("元")
        s = s.strip()
        return s.replace(",", "") if _THOUSANDS.fullmatch(s) else s
    return v


def _to_fen(v: Decimal) -> Decimal:
    return v.quantize(CENT)


_DATE_TEXT = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def _coerce_date(v: Any) -> Any:
    """Accept what clerks actually type (2024/3/1, 2024年3月1日, 20240301); never read a
    bare number as a Unix timestamp the way pydantic would."""
    if isinstance(v, dt.datetime):
        v = v.date()
    if isinstance(v, dt.date):
        d = v
    elif isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        try:
            whole = int(v)
        except (ValueError, OverflowError):
            whole = 0
        if whole != v or not 10000101 <= whole <= 99991231:
            raise ValueError(BAD_DATE)
        return _coerce_date(str(whole))
    elif isinstance(v, str):
        s = v.strip()
        m = _DATE_TEXT.fullmatch(s) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", s)
        try:
            d = dt.date(int(m[1]), int(m[2]), int(m[3])) if m else dt.date.fromisoformat(s)
        except ValueError:
            raise ValueError(BAD_DATE) from None
    else:
        return v
    if not 1900 <= d.year <= 2100:
        raise ValueError("超出合理范围")
    return d


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a PRC resident ID number."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _normalise_id(v: Any) -> Any:
    if isinstance(v, str):
        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", v)).upper()
    return v


def _check_id(v: str) -> str:
    if not re.fullmatch(r"\d{17}[\dX]", v):
        raise ValueError("应为 18 位（末位可为 X）")
    try:
        dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise ValueError("中的出生日期不正确") from None
    if id_check_char(v[:17]) != v[17]:
        raise ValueError("校验位不正确，请核对")
    return v


_IN, _FEN = BeforeValidator(_coerce_money), AfterValidator(_to_fen)
Money = Annotated[Decimal, _IN, Field(ge=0, le=MAX_MONEY, decimal_places=2), _FEN]
PositiveMoney = Annotated[Decimal, _IN, Field(gt=0, le=MAX_MONEY, decimal_places=2), _FEN]
# A running balance is a computed figure; an overdrawn book must still be disclosable.
SignedMoney = Annotated[Decimal, _IN, Field(ge=-MAX_MONEY, le=MAX_MONEY, decimal_places=2), _FEN]
Day = Annotated[dt.date, BeforeValidator(_coerce_date)]
IdNumber = Annotated[str, BeforeValidator(_normalise_id), AfterValidator(_check_id)]

# --- row models ----------------------------------------------------------------


class DisclosureRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # field -> accepted spreadsheet headers; the first is the label used in messages.
    columns: ClassVar[dict[str, tuple[str, ...]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        """A blank cell or null means "not filled": defaults apply, required fields say 必填."""
        if isinstance(data, dict):
            return {
                k: v
                for k, v in data.items()
                if not (
                    k in cls.model_fields and (v is None or (isinstance(v, str) and not v.strip()))
                )
            }
        return data


class FinanceRow(DisclosureRow):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "date": ("日期",),
        "subject": ("摘要", "科目", "事项"),
        "income": ("收入", "收入金额"),
        "expense": ("支出", "支出金额"),
        "balance": ("余额",),
        "handler": ("经办人",),
        "voucher_no": ("凭证号", "凭证编号"),
        "note": ("备注",),
    }

    date: Day
    subject: str = Field(min_length=1, max_length=100)
    income: Money = Decimal("0.00")
    expense: Money = Decimal("0.00")
    balance: SignedMoney | None = None
    handler: str = Field(min_length=1, max_length=32)
    voucher_no: str = Field(default="", max_length=32)
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _one_side(self) -> FinanceRow:
        if self.income > 0 and self.expense > 0:
            raise ValueError("收入和支出不能同时填写，请分成两行")
        if self.income == 0 and self.expense == 0:
            raise ValueError("收入和支出须填写其中一项")
        return self


class SubsidyRow(DisclosureRow):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("姓名", "户主姓名"),
        "id_number": ("身份证号", "身份证号码"),
        "item": ("补贴项目", "项目"),
        "amount": ("金额", "补贴金额"),
        "household_size": ("家庭人口", "人口"),
        "note": ("备注",),
    }

    name: str = Field(min_length=1, max_length=32)
    id_number: IdNumber | None = None
    item: str = Field(min_length=1, max_length=64)
    amount: PositiveMoney
    household_size: int | None = Field(default=None, ge=1, le=99)
    note: str = Field(default="", max_length=500)


class ProjectRow(DisclosureRow):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("项目名称",),
        "contractor": ("承包方", "中标单位", "施工单位"),
        "amount": ("金额", "合同金额"),
        "method": ("招标方式", "发包方式"),
        "start": ("开工日期",),
        "end": ("竣工日期",),
        "note": ("备注",),
    }

    name: str = Field(min_length=1, max_length=100)
    contractor: str = Field(min_length=1, max_length=100)
    amount: Money
    method: str = Field(default="", max_length=32)
    start: Day | None = None
    end: Day | None = None
    note: str = Field(default="", max_length=500)

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start")
        if v is not None and start is not None and v < start:
            raise ValueError("不能早于开工日期")
        return v


class GenericRow(DisclosureRow):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "item": ("事项", "项目"),
        "content": ("内容",),
        "amount": ("金额",),
        "note": ("备注",),
    }

    item: str = Field(min_length=1, max_length=100)
    content: str = Field(default="", max_length=500)
    amount: Money | None = None
    note: str = Field(default="", max_length=500)


_C = DisclosureCategory
_ROW_CLASSES: dict[DisclosureCategory, type[DisclosureRow]] = {
    _C.finance: FinanceRow,
    _C.subsidy: SubsidyRow,
    _C.relief: SubsidyRow,
    _C.project: ProjectRow,
    _C.party: GenericRow,
    _C.village: GenericRow,
    _C.assets: GenericRow,
    _C.other: GenericRow,
}
ROW_MODEL: dict[DisclosureCategory, type[BaseModel]] = dict(_ROW_CLASSES)
_PERSONAL = frozenset({_C.subsidy, _C.relief})

_Kind = Literal["text", "money", "date", "int", "id"]
_KINDS: dict[str, _Kind] = {
    **dict.fromkeys(("income", "expense", "balance", "amount"), "money"),
    **dict.fromkeys(("date", "start", "end"), "date"),
    "household_size": "int",
    "id_number": "id",
}

# --- validation ------------------------------------------------------------------


def _label(model: type[DisclosureRow], field: str | None) -> str:
    if field is None:
        return ""
    return model.columns.get(field, (field,))[0]


def _num(limit: Any) -> str:
    """pydantic hands some limits back as text like "Decimal('1000')"; show plain digits."""
    m = re.search(r"-?\d+(\.\d+)?(E[+-]?\d+)?", str(limit), re.IGNORECASE)
    return f"{Decimal(m[0]):,f}" if m else str(limit)


def _message(err: ErrorDetails, label: str) -> str:
    """pydantic's English, in words a village clerk can act on."""
    t, ctx = err["type"], err.get("ctx", {})
    if t == "value_error":
        return f"{label}{ctx.get('error', '')}"
    if t == "greater_than_equal":
        return f"{label}不能为负数" if ctx["ge"] == 0 else f"{label}不能小于 {_num(ctx['ge'])}"
    if t == "string_too_long":
        return f"{label}不能超过 {ctx['max_length']} 个字"
    if t in ("less_than_equal", "less_than"):
        return f"{label}不能超过 {_num(ctx.get('le', ctx.get('lt')))}"
    if t == "greater_than":
        return f"{label}须大于 {_num(ctx['gt'])}"
    if t == "extra_forbidden":
        return f"不认识的字段“{err['loc'][-1]}”"
    if t in ("model_type", "dict_type"):
        return "应为一行数据（字段: 值）"
    if t.startswith("date_"):
        return f"{label}{BAD_DATE}"
    if t.startswith("int_"):
        return f"{label}应为整数"
    simple = {
        "missing": "必填",
        "string_too_short": "不能为空",
        "string_type": "应为文本",
        "decimal_type": "应为数字金额",
        "decimal_parsing": "应为数字金额",
        "finite_number": "应为有效数字",
        "decimal_max_places": "最多保留 2 位小数",
    }
    return f"{label}{simple.get(t, '格式不正确')}"


def _validate(
    model: type[DisclosureRow],
    numbered: Iterable[tuple[int, Any]],
    already: frozenset[tuple[int, str]] = frozenset(),
) -> tuple[list[DisclosureRow], list[RowError]]:
    """`already` holds (row, field) pairs reported upstream, so they are not reported twice."""
    good: list[DisclosureRow] = []
    errors: list[RowError] = []
    for number, raw in numbered:
        try:
            good.append(model.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors():
                loc = err["loc"]
                field = str(loc[0]) if loc else None
                if field is not None and (number, field) in already:
                    continue
                errors.append(RowError(number, field, _message(err, _label(model, field))))
    return good, errors


def _too_many(count: str) -> RowError:
    return RowError(0, None, f"一次最多 {MAX_ROWS} 行，本次{count}行，请分批导入")


def validate_rows(
    category: DisclosureCategory,
    raw_rows: list[dict[str, Any]],
    *,
    first_row_number: int = 1,
) -> list[BaseModel]:
    """Check every row before raising, so a clerk fixes the whole sheet in one pass."""
    if len(raw_rows) > MAX_ROWS:
        raise InvalidRows([_too_many(f" {len(raw_rows)} ")])
    good, errors = _validate(_ROW_CLASSES[category], enumerate(raw_rows, start=first_row_number))
    if errors:
        raise InvalidRows(errors)
    return list(good)


# --- finance arithmetic ---------------------------------------------------------------


def _yuan(d: Decimal) -> str:
    return f"{d:,.2f}"


def totals(rows: Sequence[FinanceRow]) -> tuple[Decimal, Decimal]:
    income = sum((r.income for r in rows), Decimal("0.00"))
    expense = sum((r.expense for r in rows), Decimal("0.00"))
    return income, expense


def check_balance(
    rows: Sequence[FinanceRow],
    opening: Decimal,
    closing: Decimal,
    *,
    first_row_number: int = 1,
) -> None:
    """Stop at the first stated balance that disagrees: every later one would disagree too,
    and the clerk needs the row where the books first went wrong."""
    running = opening
    for number, row in enumerate(rows, start=first_row_number):
        running += row.income - row.expense
        if row.balance is not None and row.balance != running:
            msg = f"余额应为 {_yuan(running)}，填写为 {_yuan(row.balance)}"
            raise InvalidRows([RowError(number, "balance", msg)], detail=f"第 {number} 行{msg}")
    if running != closing:
        msg = (
            f"期初 + 收入 − 支出 = {_yuan(running)}，与期末余额 {_yuan(closing)} 不符，"
            f"相差 {_yuan(abs(running - closing))}"
        )
        last = first_row_number + len(rows) - 1 if rows else 0
        raise InvalidRows([RowError(last, "closing", msg)], detail=msg)


# --- masking for the public side ----------------------------------------------------


def mask_name(name: str) -> str:
    s = name.strip()
    if len(s) <= 1:
        return s
    if len(s) == 2:
        return s[0] + "*"
    return s[0] + "*" * (len(s) - 2) + s[-1]


def mask_id(value: str) -> str:
    """18 characters: first 4 + 8 stars + last 4. Anything else reveals at most one
    character at each end and never more than half."""
    s = value.strip()
    n = len(s)
    if n == 18:
        return s[:4] + "*" * 8 + s[-4:]
    if n <= 2:
        return "*" * n
    if n == 3:
        return s[0] + "**"
    return s[0] + "*" * (n - 2) + s[-1]


_ID_IN_TEXT = re.compile(r"(?<![0-9])\d{6}\s?\d{8}\s?\d{3}[0-9Xx](?![0-9])")
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![0-9])")


def mask_text(text: str) -> str:
    """Clerks paste contact details into notes; the public copy must not carry them."""
    text = _ID_IN_TEXT.sub(lambda m: mask_id(re.sub(r"\s", "", m[0])), text)
    return _MOBILE_IN_TEXT.sub(lambda m: f"{m[1]}****{m[3]}", text)


def public_row(category: DisclosureCategory, row: dict[str, Any]) -> dict[str, Any]:
    """Names of recipients are masked; cadres' names (经办人) stay, as they act publicly."""
    out = dict(row)
    for key, value in row.items():
        if not isinstance(value, str):
            continue
        if key == "id_number":
            out[key] = mask_id(value)
        elif key == "name" and category in _PERSONAL:
            out[key] = mask_name(value)
        elif _KINDS.get(key, "text") == "text":
            out[key] = mask_text(value)
    return out
