"""Closed vocabularies shared by models, schemas and the routing engine."""

from __future__ import annotations

import enum


class RegionLevel(enum.StrEnum):
    city = "city"
    county = "county"
    township = "township"
    village = "village"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    def parent(self) -> RegionLevel | None:
        order = list(RegionLevel)
        i = order.index(self)
        return order[i - 1] if i > 0 else None

    @property
    def label(self) -> str:
        return {"city": "市级", "county": "县级", "township": "乡镇级", "village": "村级"}[
            self.value
        ]


_LEVEL_RANK = {
    RegionLevel.city: 0,
    RegionLevel.county: 1,
    RegionLevel.township: 2,
    RegionLevel.village: 3,
}


class UnitKind(enum.StrEnum):
    commission = "commission"  # 纪委监委
    resident_group = "resident_group"  # 派驻纪检监察组
    township_committee = "township_committee"  # 乡镇纪委 / 街道纪工委
    village_committee = "village_committee"  # 村务监督委员会


class ItemClass(enum.StrEnum):
    consultation = "consultation"  # 政策咨询
    suggestion = "suggestion"  # 意见建议
    request = "request"  # 求决
    complaint = "complaint"  # 投诉
    accusation = "accusation"  # 问题线索 / 举报

    @property
    def label(self) -> str:
        return ITEM_CLASS_LABELS[self]


ITEM_CLASS_LABELS = {
    ItemClass.consultation: "政策咨询",
    ItemClass.suggestion: "意见建议",
    ItemClass.request: "求决",
    ItemClass.complaint: "投诉",
    ItemClass.accusation: "问题线索/举报",
}


class Tier(enum.StrEnum):
    simple = "simple"  # 简易：1–3 个工作日
    general = "general"  # 一般：7 个工作日
    complex = "complex"  # 复杂：15–90 个工作日
    discipline = "discipline"  # 纪律问题线索：依纪依规

    @property
    def label(self) -> str:
        return {
            "simple": "简易件",
            "general": "一般件",
            "complex": "复杂件",
            "discipline": "问题线索",
        }[self.value]

    def allowed_days(self) -> range:
        return {
            "simple": range(1, 4),
            "general": range(7, 8),
            "complex": range(15, 91),
            "discipline": range(15, 91),
        }[self.value]


class StaffRole(enum.StrEnum):
    admin = "admin"
    supervisor = "supervisor"  # 纪检干部
    handler = "handler"  # 承办人（职能部门）
    agent = "agent"  # 代办员
    leader = "leader"  # 分管 / 主要领导
    clerk = "clerk"  # 村务公开经办人 (drafts a village's disclosures)
    committee = "committee"  # 村务监督委员会成员 (reviews them before publication)


class MediaKind(enum.StrEnum):
    image = "image"
    voice = "voice"
    video = "video"
    document = "document"  # PDF, for staff attachments to disclosures


class MediaStatus(enum.StrEnum):
    pending = "pending"  # a direct-upload ticket was issued
    ready = "ready"  # stored and checked, not yet attached
    attached = "attached"


class ComplaintStatus(enum.StrEnum):
    submitted = "submitted"
    accepted = "accepted"
    rejected = "rejected"
    assigned = "assigned"
    in_progress = "in_progress"
    escalated = "escalated"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]

    @property
    def is_open(self) -> bool:
        return self not in (ComplaintStatus.closed, ComplaintStatus.rejected)


STATUS_LABELS = {
    ComplaintStatus.submitted: "待受理",
    ComplaintStatus.accepted: "已受理",
    ComplaintStatus.rejected: "不予受理",
    ComplaintStatus.assigned: "已分派",
    ComplaintStatus.in_progress: "办理中",
    ComplaintStatus.escalated: "已上报",
    ComplaintStatus.resolved: "已办结",
    ComplaintStatus.closed: "已销号",
    ComplaintStatus.reopened: "重新办理",
}


class Channel(enum.StrEnum):
    online = "online"  # the mini-program
    visit = "visit"  # 来访
    phone = "phone"  # 来电
    letter = "letter"  # 来信
    door_to_door = "door_to_door"  # 干部走访发现
    agent = "agent"  # 代办员代办
    open311 = "open311"  # 外部系统经 Open311 GeoReport v2 接口提交（如 12345 热线）


class DisclosureCategory(enum.StrEnum):
    """村务公开 categories, as posted on village boards."""

    party = "party"
    village = "village"
    finance = "finance"
    subsidy = "subsidy"
    relief = "relief"
    project = "project"
    assets = "assets"
    other = "other"

    @property
    def label(self) -> str:
        return DISCLOSURE_CATEGORY_LABELS[self]


DISCLOSURE_CATEGORY_LABELS = {
    DisclosureCategory.party: "党务",
    DisclosureCategory.village: "村务",
    DisclosureCategory.finance: "财务收支",
    DisclosureCategory.subsidy: "惠农补贴",
    DisclosureCategory.relief: "低保救助",
    DisclosureCategory.project: "工程项目",
    DisclosureCategory.assets: "集体三资",
    DisclosureCategory.other: "其他",
}


class DisclosureStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    withdrawn = "withdrawn"
    superseded = "superseded"  # replaced by a published correction, still shown


class PeriodKind(enum.StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"
