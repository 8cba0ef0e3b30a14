"""GeoReport v2 shapes, for the OpenAPI document and as the one place field names live.

Field names are the specification's (``long``, ``group``, ``metadata``...), not
ours: real clients read them by name.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel


class Open311Error(BaseModel):
    code: int = Field(description="the HTTP status")
    description: str


class Service(BaseModel):
    service_code: str = Field(description="the item (具体事项) code")
    service_name: str
    description: str
    metadata: bool = Field(description="true when the item has attributes to fill")
    type: str = Field(description="realtime: the request id is returned at once")
    keywords: str = Field(description="comma-separated")
    group: str = Field(description="the category (问题类别)")


class AttributeValue(BaseModel):
    key: str
    name: str


class Attribute(BaseModel):
    variable: bool
    code: str
    datatype: str = Field(
        description="string, number, datetime, text, singlevaluelist, multivaluelist"
    )
    required: bool
    datatype_description: str | None = None
    order: int
    description: str
    values: list[AttributeValue] = Field(default_factory=list)


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Attribute]


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str = Field(description="open or closed")
    status_notes: str | None = Field(default=None, description="the latest public reply")
    service_name: str
    service_code: str
    description: str = Field(description="the public summary of what was reported")
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = Field(default=None, description="the village (村/社区) code")
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


class RequestFiled(BaseModel):
    service_request_id: str
    token: str
    service_notice: str | None = None
    account_id: str | None = None


class TokenAnswer(BaseModel):
    token: str
    service_request_id: str | None = None


class Endpoint(BaseModel):
    specification: str
    url: str
    changeset: datetime
    type: str
    formats: list[str]


class Discovery(BaseModel):
    changeset: datetime
    contact: str
    key_service: str
    endpoints: list[Endpoint]


# --- the administrators' side (/api/v1/staff/integrators) ------------------------------


class IntegratorCreate(RequestModel):
    name: str = Field(
        min_length=2, max_length=64, description="who the key is for, e.g. 达州市12345热线"
    )
    contact: str = Field(default="", max_length=120, description="who to call about it")
    requests_per_hour: int | None = Field(
        default=None, ge=1, le=100_000, description="filings per hour; unset: the default setting"
    )


class IntegratorRead(BaseModel):
    id: int
    name: str
    contact: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    requests_per_hour: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IntegratorIssued(IntegratorRead):
    api_key: str = Field(description="shown once, at issue; only its hash is kept")


class IntegratorPage(BaseModel):
    items: list[IntegratorRead]
    next_cursor: str | None = None
