"""Pure tests of app.disclosures.rows: no database, no HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from openpyxl import Workbook

from app.core.errors import AppError, error_body
from app.disclosures.rows import (
    MAX_ROWS,
    ROW_MODEL,
    FinanceRow,
    GenericRow,
    InvalidRows,
    ProjectRow,
    RowError,
    SubsidyRow,
    check_balance,
    mask_id,
    mask_name,
    mask_text,
    public_row,
    totals,
    validate_rows,
)
from app.disclosures.xlsx import parse_xlsx
from app.models.enums import DisclosureCategory as C


def make_id(first17: str) -> str:
    """ISO 7064 MOD 11-2 from its definition (weights 2^(17-i) mod 11), not the module's table."""
    s = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    check = (12 - s % 11) % 11
    return first17 + ("X" if check == 10 else str(check))


VALID_ID = make_id("51170219900101123")
X_ID = next(i for i in (make_id(f"51170219900101{n:03d}") for n in range(1000)) if i.endswith("X"))


def errors_of(exc: pytest.ExceptionInfo[InvalidRows]) -> list[tuple[int, str | None]]:
    return [(e["row"], e["field"]) for e in exc.value.extra["rows"]]


def messages(exc: pytest.ExceptionInfo[InvalidRows]) -> dict[tuple[int, str | None], str]:
    return {(e["row"], e["field"]): e["message"] for e in exc.value.extra["rows"]}


def fin(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "date": "2024-03-01",
        "subject": "收到上级拨款",
        "income": "100",
        "handler": "李会计",
    }
    row.update(kw)
    return row


def sub(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": "张三明", "id_number": VALID_ID, "item": "耕地地力保护补贴"}
    row["amount"] = "128.50"
    row.update(kw)
    return row


# --- models ------------------------------------------------------------------------


class TestFinanceRow:
    def test_good_row_is_normalised_to_fen(self) -> None:
        (row,) = validate_rows(C.finance, [fin(income="1,234.5", voucher_no=" 记-01 ")])
        assert isinstance(row, FinanceRow)
        assert row.income == Decimal("1234.50") and str(row.income) == "1234.50"
        assert row.expense == 0 and row.balance is None
        assert row.voucher_no == "记-01"
        assert row.model_dump(mode="json")["income"] == "1234.50"

    @pytest.mark.parametrize(
        "text", ["2024-03-01", "2024/3/1", "2024.03.01", "2024年3月1日", "20240301", 20240301]
    )
    def test_dates_clerks_type(self, text: object) -> None:
        (row,) = validate_rows(C.finance, [fin(date=text)])
        assert isinstance(row, FinanceRow)
        assert row.date == dt.date(2024, 3, 1)

    def test_datetime_becomes_its_date(self) -> None:
        (row,) = validate_rows(C.finance, [fin(date=dt.datetime(2024, 3, 1, 15, 30))])
        assert isinstance(row, FinanceRow) and row.date == dt.date(2024, 3, 1)

    def test_float_noise_snaps_but_extra_digits_do_not(self) -> None:
        (row,) = validate_rows(C.finance, [fin(income=0.1 + 0.2)])
        assert isinstance(row, FinanceRow) and row.income == Decimal("0.30")
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.finance, [fin(income=1.005)])
        assert messages(exc)[(1, "income")] == "收入最多保留 2 位小数"

    def test_negative_balance_is_allowed(self) -> None:
        (row,) = validate_rows(C.finance, [fin(balance="-20.00")])
        assert isinstance(row, FinanceRow) and row.balance == Decimal("-20.00")

    def test_blank_optional_fields_take_defaults(self) -> None:
        (row,) = validate_rows(C.finance, [fin(expense="", balance=None, note="  ")])
        assert isinstance(row, FinanceRow)
        assert row.expense == 0 and row.balance is None and row.note == ""

    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ({"date": None}, "date", "日期必填"),
            ({"subject": "   "}, "subject", "摘要必填"),
            ({"subject": "账" * 101}, "subject", "摘要不能超过 100 个字"),
            ({"handler": 12}, "handler", "经办人应为文本"),
            ({"income": "-5"}, "income", "收入不能为负数"),
            ({"income": "1.234"}, "income", "收入最多保留 2 位小数"),
            ({"income": "abc"}, "income", "收入应为数字金额"),
            ({"income": True}, "income", "收入应为数字金额"),
            ({"income": "1e13"}, "income", "收入不能超过 1,000,000,000,000"),
            ({"income": "NaN"}, "income", "收入应为有效数字"),
            ({"date": "2024-02-30"}, "date", "日期格式不正确（如 2024-03-01）"),
            ({"date": "下周一"}, "date", "日期格式不正确（如 2024-03-01）"),
            ({"date": 1_700_000_000}, "date", "日期格式不正确（如 2024-03-01）"),
            ({"date": "1800-01-01"}, "date", "日期超出合理范围"),
            ({"voucher_no": "9" * 33}, "voucher_no", "凭证号不能超过 32 个字"),
            ({"colour": "red"}, "colour", "不认识的字段“colour”"),
        ],
    )
    def test_bad_values(self, change: dict[str, Any], field: str, message: str) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.finance, [fin(**change)])
        assert messages(exc) == {(1, field): message}

    def test_income_or_expense_but_not_both(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.finance, [fin(income="1", expense="2"), fin(income="0")])
        assert messages(exc) == {
            (1, None): "收入和支出不能同时填写，请分成两行",
            (2, None): "收入和支出须填写其中一项",
        }


class TestSubsidyRow:
    def test_good_row(self) -> None:
        (row,) = validate_rows(C.subsidy, [sub(household_size="3")])
        assert isinstance(row, SubsidyRow)
        assert row.id_number == VALID_ID and row.amount == Decimal("128.50")
        assert row.household_size == 3

    def test_id_is_optional_and_x_is_upper_cased(self) -> None:
        rows = validate_rows(C.relief, [sub(id_number=""), sub(id_number=X_ID.lower())])
        assert [r.id_number for r in rows if isinstance(r, SubsidyRow)] == [None, X_ID]

    def test_full_width_and_spaced_id_is_normalised(self) -> None:
        spaced = VALID_ID[:6] + " " + VALID_ID[6:14] + " " + VALID_ID[14:]
        wide = spaced.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
        (row,) = validate_rows(C.subsidy, [sub(id_number=wide)])
        assert isinstance(row, SubsidyRow) and row.id_number == VALID_ID

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (VALID_ID[:17] + str((int(VALID_ID[17]) + 1) % 10), "身份证号校验位不正确，请核对"),
            (VALID_ID[:17], "身份证号应为 18 位（末位可为 X）"),
            ("51170219900101123A", "身份证号应为 18 位（末位可为 X）"),
            (make_id("51170219901301123"), "身份证号中的出生日期不正确"),
        ],
    )
    def test_bad_id(self, value: str, message: str) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.subsidy, [sub(id_number=value)])
        assert messages(exc) == {(1, "id_number"): message}

    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ({"amount": "0"}, "amount", "金额须大于 0"),
            ({"amount": "-1"}, "amount", "金额须大于 0"),
            ({"name": "名" * 33}, "name", "姓名不能超过 32 个字"),
            ({"item": None}, "item", "补贴项目必填"),
            ({"household_size": "2.5"}, "household_size", "家庭人口应为整数"),
            ({"household_size": 0}, "household_size", "家庭人口不能小于 1"),
        ],
    )
    def test_bad_values(self, change: dict[str, Any], field: str, message: str) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.subsidy, [sub(**change)])
        assert messages(exc) == {(1, field): message}


class TestProjectAndGeneric:
    def test_project_good(self) -> None:
        raw = {"name": "村道硬化", "contractor": "某建设公司", "amount": "356000"}
        (row,) = validate_rows(C.project, [{**raw, "start": "2024/3/1", "end": "2024-06-30"}])
        assert isinstance(row, ProjectRow)
        assert row.amount == Decimal("356000.00") and row.end == dt.date(2024, 6, 30)

    def test_project_end_before_start_and_missing_contractor(self) -> None:
        raw = {"name": "村道硬化", "amount": "1", "start": "2024-06-30", "end": "2024-03-01"}
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.project, [raw])
        assert messages(exc) == {
            (1, "contractor"): "承包方必填",
            (1, "end"): "竣工日期不能早于开工日期",
        }

    @pytest.mark.parametrize("category", [C.party, C.village, C.assets, C.other])
    def test_generic_categories(self, category: C) -> None:
        rows = validate_rows(category, [{"item": "换届选举", "content": "选举结果"}])
        assert isinstance(rows[0], GenericRow) and rows[0].amount is None

    def test_generic_bad(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.assets, [{"item": "", "content": "x" * 501, "amount": "-1"}])
        assert messages(exc) == {
            (1, "item"): "事项必填",
            (1, "content"): "内容不能超过 500 个字",
            (1, "amount"): "金额不能为负数",
        }

    def test_every_category_has_a_model(self) -> None:
        assert set(ROW_MODEL) == set(C)
        assert ROW_MODEL[C.subsidy] is ROW_MODEL[C.relief] is SubsidyRow


# --- validate_rows and the error shape ---------------------------------------------------


class TestValidateRows:
    def test_collects_every_error_with_offset_row_numbers(self) -> None:
        raw = [fin(), fin(), fin(income="x"), fin(), fin(), fin(), fin(date="?", handler="")]
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.finance, raw)
        assert errors_of(exc) == [(3, "income"), (7, "date"), (7, "handler")]
        assert exc.value.detail == "第 3、7 行有误，未导入任何数据"
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.finance, raw, first_row_number=10)
        assert errors_of(exc) == [(12, "income"), (16, "date"), (16, "handler")]

    def test_non_dict_row(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.finance, [fin(), "oops"])  # type: ignore[list-item]
        assert messages(exc) == {(2, None): "应为一行数据（字段: 值）"}

    def test_too_many_rows(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            validate_rows(C.other, [{"item": "x"}] * (MAX_ROWS + 1))
        assert errors_of(exc) == [(0, None)]
        assert "2000" in exc.value.detail and "2001" in exc.value.detail

    def test_exactly_the_limit_is_fine(self) -> None:
        assert len(validate_rows(C.other, [{"item": "x"}] * MAX_ROWS)) == MAX_ROWS

    def test_error_shape(self) -> None:
        err = InvalidRows([RowError(7, "amount", "b"), RowError(3, None, "a")])
        assert isinstance(err, AppError)
        assert (err.status_code, err.code) == (400, "invalid_rows")
        assert error_body(err.code, err.detail, **err.extra) == {
            "error": "invalid_rows",
            "detail": "第 3、7 行有误，未导入任何数据",
            "rows": [
                {"row": 3, "field": None, "message": "a"},
                {"row": 7, "field": "amount", "message": "b"},
            ],
        }

    def test_long_row_lists_are_summarised(self) -> None:
        err = InvalidRows([RowError(r, None, "x") for r in range(1, 26)])
        assert err.detail == "第 1、2、3、4、5、6、7、8、9、10 等 25 行有误，未导入任何数据"


# --- balances ---------------------------------------------------------------------------


def ledger(*lines: tuple[str, str, str | None]) -> list[FinanceRow]:
    raw = [fin(income=i, expense=e, balance=b) for i, e, b in lines]
    return [r for r in validate_rows(C.finance, raw) if isinstance(r, FinanceRow)]


class TestBalance:
    def test_balanced_ledger_passes(self) -> None:
        rows = ledger(("500", "", "1500.00"), ("", "265.5", "1234.50"), ("", "0.5", None))
        check_balance(rows, Decimal("1000"), Decimal("1234.00"))
        assert totals(rows) == (Decimal("500.00"), Decimal("266.00"))

    def test_names_the_row_whose_balance_is_wrong(self) -> None:
        rows = ledger(("1000", "", "2000.00"), ("", "766", "1234.00"), ("10", "", "1253.00"))
        rows[1] = rows[1].model_copy(update={"balance": Decimal("1243.00")})
        with pytest.raises(InvalidRows) as exc:
            check_balance(rows, Decimal("1000"), Decimal("1244"), first_row_number=4)
        assert messages(exc) == {(5, "balance"): "余额应为 1,234.00，填写为 1,243.00"}
        assert exc.value.detail == "第 5 行余额应为 1,234.00，填写为 1,243.00"

    def test_closing_mismatch_names_last_row_and_difference(self) -> None:
        rows = ledger(("1500", "", None), ("", "265.5", None))
        with pytest.raises(InvalidRows) as exc:
            check_balance(rows, Decimal("0"), Decimal("1200"), first_row_number=2)
        msg = "期初 + 收入 − 支出 = 1,234.50，与期末余额 1,200.00 不符，相差 34.50"
        assert messages(exc) == {(3, "closing"): msg}
        assert exc.value.detail == msg

    def test_no_rows(self) -> None:
        check_balance([], Decimal("5"), Decimal("5.00"))
        assert totals([]) == (Decimal("0"), Decimal("0"))
        with pytest.raises(InvalidRows) as exc:
            check_balance([], Decimal("5"), Decimal("6"))
        assert errors_of(exc) == [(0, "closing")]


# --- masking ----------------------------------------------------------------------------


class TestMasking:
    @pytest.mark.parametrize(
        ("name", "masked"),
        [("张三明", "张*明"), ("张三", "张*"), ("欧阳小明", "欧**明"), ("张", "张"), ("", "")],
    )
    def test_mask_name(self, name: str, masked: str) -> None:
        assert mask_name(name) == masked

    @pytest.mark.parametrize(
        ("value", "masked"),
        [
            ("511702199001011234", "5117********1234"),
            ("51170219900101123X", "5117********123X"),
            ("511702900101123", "5*************3"),
            ("1234", "1**4"),
            ("123", "1**"),
            ("12", "**"),
            ("1", "*"),
            ("", ""),
        ],
    )
    def test_mask_id(self, value: str, masked: str) -> None:
        assert mask_id(value) == masked
        shown = sum(c != "*" for c in masked)
        assert shown <= len(value) // 2 or len(value) == 18

    def test_mask_text(self) -> None:
        text = (
            f"户主{VALID_ID}，电话13812345678，备用 139-1234-5678，"
            f"旧号 {VALID_ID[:6]} {VALID_ID[6:14]} {VALID_ID[14:]}"
        )
        assert mask_text(text) == (
            f"户主{VALID_ID[:4]}********{VALID_ID[-4:]}，电话138****5678，备用 139****5678，"
            f"旧号 {VALID_ID[:4]}********{VALID_ID[-4:]}"
        )

    @pytest.mark.parametrize(
        "text", ["合同金额 12345678901 元", "编号 123456789012", "电话 0818-2345678", "10086"]
    )
    def test_mask_text_leaves_other_numbers(self, text: str) -> None:
        assert mask_text(text) == text

    def test_public_subsidy_row(self) -> None:
        row = {"name": "欧阳小明", "id_number": VALID_ID, "item": "低保", "amount": "300.00"}
        row["note"] = "联系电话 13912345678"
        out = public_row(C.relief, row)
        assert out == {
            "name": "欧**明",
            "id_number": VALID_ID[:4] + "********" + VALID_ID[-4:],
            "item": "低保",
            "amount": "300.00",
            "note": "联系电话 139****5678",
        }
        assert row["name"] == "欧阳小明"  # the stored row is untouched

    def test_public_subsidy_row_without_id(self) -> None:
        out = public_row(C.subsidy, {"name": "张三", "id_number": None, "amount": "1.00"})
        assert out == {"name": "张*", "id_number": None, "amount": "1.00"}

    def test_cadres_and_projects_are_not_masked(self) -> None:
        fin_row = {"handler": "李会计", "subject": "付王五工资 13812345678", "income": "0.00"}
        assert public_row(C.finance, fin_row) == {**fin_row, "subject": "付王五工资 138****5678"}
        project = {"name": "张家湾村道", "contractor": "某公司", "amount": "13812345678.00"}
        assert public_row(C.project, project) == project


# --- xlsx import ------------------------------------------------------------------------


def xlsx(*rows: list[Any]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for number, row in enumerate(rows, start=1):
        for col, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(row=number, column=col, value=value)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


FIN_HEADER = [
    "序号",
    "日期",
    "摘要",
    "收入（元）",
    "支出金额",
    "余额",
    "经办人",
    "凭证编号",
    "备注",
]


class TestParseXlsx:
    def test_good_finance_sheet(self) -> None:
        data = xlsx(
            FIN_HEADER,
            [1, dt.datetime(2024, 3, 1), "上级拨款", 1500, None, 1500, "李会计", 1001, None],
            [None] * 9,
            [2, "2024/3/5", " 购办公用品 ", None, 265.5, "1,234.50", "李会计", "记-02", "发票"],
        )
        assert parse_xlsx(data, C.finance) == [
            {
                "date": "2024-03-01",
                "subject": "上级拨款",
                "income": "1500.00",
                "expense": "0.00",
                "balance": "1500.00",
                "handler": "李会计",
                "voucher_no": "1001",
                "note": "",
            },
            {
                "date": "2024-03-05",
                "subject": "购办公用品",
                "income": "0.00",
                "expense": "265.50",
                "balance": "1234.50",
                "handler": "李会计",
                "voucher_no": "记-02",
                "note": "发票",
            },
        ]

    def test_good_subsidy_sheet_with_alternative_headers(self) -> None:
        data = xlsx(
            ["户主姓名", "身份证号码", "项目", "补贴金额", "人口", "备注"],
            ["张三明", X_ID.lower(), "耕地地力保护补贴", 128.5, 3.0, None],
        )
        (row,) = parse_xlsx(data, C.subsidy)
        assert row["id_number"] == X_ID and row["amount"] == "128.50"
        assert row["household_size"] == 3

    def test_project_and_generic_headers(self) -> None:
        data = xlsx(
            ["项目名称", "中标单位", "合同金额", "发包方式", "开工日期", "竣工日期"],
            ["村道硬化", "某公司", 356000, "公开招标", 45352, "2024年6月30日"],
        )
        (row,) = parse_xlsx(data, C.project)
        assert (row["start"], row["end"], row["method"]) == ("2024-03-01", "2024-06-30", "公开招标")
        rows = parse_xlsx(xlsx(["事项", "内容", "金额"], ["党费收缴", "第一季度", None]), C.party)
        assert rows == [{"item": "党费收缴", "content": "第一季度", "amount": None, "note": ""}]

    def test_bad_cells_report_excel_row_numbers(self) -> None:
        good = [1, "2024-03-01", "拨款", 100, None, None, "李", None, None]
        data = xlsx(
            FIN_HEADER,
            good,
            [None] * 9,  # row 3, skipped
            [*good[:3], "一百", *good[4:]],  # row 4
            good,
            [*good[:1], "2024-13-01", *good[2:]],  # row 6
        )
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(data, C.finance)
        assert messages(exc) == {
            (4, "income"): "收入应为数字金额",
            (6, "date"): "日期格式不正确（如 2024-03-01）",
        }
        assert exc.value.detail == "第 4、6 行有误，未导入任何数据"

    def test_float_artefacts(self) -> None:
        data = xlsx(["事项", "金额"], ["a", 0.1 + 0.2], ["b", 1.005], ["c", 2.675])
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(data, C.other)
        assert messages(exc) == {
            (3, "amount"): "金额最多保留 2 位小数",
            (4, "amount"): "金额最多保留 2 位小数",
        }
        (row,) = parse_xlsx(xlsx(["事项", "金额"], ["a", 0.1 + 0.2]), C.other)
        assert row["amount"] == "0.30"

    def test_id_stored_as_number_is_rejected_not_garbled(self) -> None:
        data = xlsx(["姓名", "身份证号", "补贴项目", "金额"], ["张三", float(VALID_ID), "x", 1])
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(data, C.subsidy)
        assert messages(exc) == {
            (2, "id_number"): "身份证号须设为文本格式填写：数字格式会丢失末几位"
        }

    def test_unknown_column(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(["事项", "内容", "负责人"], ["a", "b", "c"]), C.village)
        ((row, field),) = errors_of(exc)
        assert (row, field) == (1, "负责人")
        assert "负责人" in exc.value.detail and "C 列" in exc.value.detail

    def test_missing_and_duplicate_columns(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(["项目", "补贴项目", "金额"], ["a", "b", 1]), C.subsidy)
        assert messages(exc) == {
            (1, "item"): "“补贴项目”列重复",
            (1, "name"): "缺少“姓名”列",
        }
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(["日期", "摘要", "经办人"], ["2024-01-01", "a", "b"]), C.finance)
        assert messages(exc) == {(1, "income"): "缺少“收入”或“支出”列"}

    def test_data_under_no_header(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(["事项", None], ["a", None], ["b", "stray"]), C.other)
        assert messages(exc) == {(1, None): "B 列有数据但没有表头"}

    @pytest.mark.parametrize(
        ("data", "needle"),
        [
            (b"not a spreadsheet", "不是有效的 .xlsx"),
            (b"", "不是有效的 .xlsx"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
        ],
    )
    def test_corrupt_files(self, data: bytes, needle: str) -> None:
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(data, C.finance)
        assert errors_of(exc) == [(0, None)]
        assert needle in exc.value.detail

    def test_truncated_xlsx(self) -> None:
        data = xlsx(["事项"], ["a"])
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(data[: len(data) // 2], C.other)
        assert errors_of(exc) == [(0, None)]

    def test_empty_sheets(self) -> None:
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(), C.other)
        assert errors_of(exc) == [(1, None)]
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(["事项"], [None], ["  "]), C.other)
        assert messages(exc) == {(0, None): "表格中没有数据行"}

    def test_row_limit_counts_data_rows_only(self) -> None:
        rows = [["事项"], *([f"第{i}项"] for i in range(MAX_ROWS))]
        assert len(parse_xlsx(xlsx(*rows, [None], [None]), C.other)) == MAX_ROWS
        with pytest.raises(InvalidRows) as exc:
            parse_xlsx(xlsx(*rows, ["one more"]), C.other)
        assert errors_of(exc) == [(0, None)]
        assert str(MAX_ROWS) in exc.value.detail
