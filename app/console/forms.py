"""From HTML forms to the API's request models, and their errors in Chinese.

Forms send text; the API's Pydantic models (``ActionRequest``,
``OfflineIntake``, ``OrderCreate``) stay the one definition of what a valid
request is. Here a form is only turned into the same dictionary a JSON client
would send (empty fields left out), and a validation error into a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from app.console.dependencies import field
from app.workflow.machine import Action
from app.workflow.schemas import ActionRequest


@dataclass(frozen=True, slots=True)
class ActionSpec:
    label: str  # the form's title and button
    done: str  # "已…" after success
    hint: str
    note_label: str
    note_required: bool = False
    danger: bool = False


# Keyed by the action's value, so an action added to the machine later (e.g.
# reclassify) gets a generic form until it has an entry here.
ACTION_SPECS: dict[str, ActionSpec] = {
    Action.accept.value: ActionSpec("受理", "受理", "受理后群众将收到受理通知。", "受理意见"),
    Action.reject.value: ActionSpec(
        "不予受理", "不予受理", "理由将告知群众。", "不予受理理由", note_required=True, danger=True
    ),
    Action.assign.value: ActionSpec(
        "分派承办干部", "分派", "分派给本单位在岗的纪检干部。", "分派说明"
    ),
    Action.transfer.value: ActionSpec(
        "转职能部门办理", "转办", "转交县（区）或市级职能部门承办。", "转办说明"
    ),
    Action.escalate.value: ActionSpec(
        "上报上级单位", "上报", "上报后由上一级监督单位负责。", "上报原因", note_required=True
    ),
    Action.reply.value: ActionSpec(
        "阶段性答复", "答复", "向群众告知办理进展。", "答复内容", note_required=True
    ),
    Action.resolve.value: ActionSpec(
        "办结", "办结", "写明办理结果；群众将收到办结通知并可评价。", "办理结果", note_required=True
    ),
    Action.sign.value: ActionSpec("会签", "会签", "四方会签齐全后案件销号。", "签字意见"),
    Action.reopen.value: ActionSpec(
        "重新办理", "重新办理", "退回重新办理，本轮会签作废。", "重新办理原因", note_required=True
    ),
    Action.extend.value: ActionSpec(
        "延长办理期限",
        "延期",
        "承办人申请，本单位纪检干部或领导批准。",
        "延期理由",
        note_required=True,
    ),
    "reclassify": ActionSpec(
        "更正事项分类", "更正分类", "群众所选事项有误时更正，将按新事项重新分流。", "更正原因"
    ),
}
SLOT_LABELS = {
    "complainant": "群众确认",
    "handler": "承办人",
    "supervising_leader": "分管领导",
    "principal_leader": "主要领导",
}
# Whose text the resident reads (the rest is internal).
PUBLIC_TEXT_ACTIONS = frozenset({"reject", "reply", "resolve"})
FORM_FIELDS = (
    "expected_version",
    "note",
    "public_reply",
    "cadre_id",
    "department_code",
    "department_region_code",
    "days",
    "slot",
    "item_code",
)
FIELD_LABELS = {
    "expected_version": "案件版本",
    "note": "意见",
    "public_reply": "公开答复",
    "cadre_id": "承办干部",
    "department_code": "职能部门",
    "department_region_code": "部门所在区划",
    "days": "工作日数",
    "slot": "会签栏",
    "item_code": "事项",
    "region_code": "村（社区）",
    "content": "反映内容",
    "reporter_name": "反映人姓名",
    "reporter_phone": "联系电话",
    "received_at": "受理时间",
    "channel": "登记渠道",
    "reason": "督办事由",
    "deadline_days": "督办期限",
    "priority_flags": "优先标记",
    "accused_level": "被反映人层级",
    "anonymous": "匿名",
    "media_ids": "附件",
}
_MESSAGES = {
    "missing": "必须填写",
    "string_too_short": "内容太短",
    "string_too_long": "内容太长",
    "too_long": "数量太多",
    "int_parsing": "须为整数",
    "int_from_float": "须为整数",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "string_pattern_mismatch": "格式不正确",
    "enum": "不是可选的值",
    "literal_error": "不是可选的值",
    "datetime_parsing": "时间格式不正确",
    "datetime_from_date_parsing": "时间格式不正确",
    "timezone_aware": "须带时区",
    "bool_parsing": "取值无效",
    "extra_forbidden": "不应提交",
}


def public_reply_supported() -> bool:
    """Whether the action body separates the resident's text (``public_reply``)
    from the internal note; before that, ``note`` is the public text of
    reply, resolve and reject."""
    return "public_reply" in ActionRequest.model_fields


def action_payload(action: Action, form: FormData) -> dict[str, Any]:
    """What a JSON client would send for this action: the fields the model
    knows, empty ones left out."""
    known = ActionRequest.model_fields
    data: dict[str, Any] = {}
    for name in FORM_FIELDS:
        value = field(form, name)
        if name in known and value != "":
            data[name] = value
    return data


def error_text(exc: ValidationError) -> str:
    """The errors as one Chinese sentence, naming each field."""
    parts = []
    for err in exc.errors()[:6]:
        loc = [str(x) for x in err.get("loc", ()) if not isinstance(x, int)]
        name = FIELD_LABELS.get(loc[-1], loc[-1]) if loc else "内容"
        kind = str(err.get("type", ""))
        if kind == "value_error":
            # Our own validators speak Chinese already ("Value error, …").
            text = str(err.get("msg", "")).removeprefix("Value error, ")
        else:
            text = _MESSAGES.get(kind, "填写有误")
        parts.append(f"「{name}」{text}")
    return "；".join(parts) + "。"
