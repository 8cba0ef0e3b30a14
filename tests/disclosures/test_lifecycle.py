"""Draft → published → withdrawn, second-person review, corrections that keep
history, balance checks, masking, views, and the audited event chain."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit import verify
from app.disclosures.events import GENESIS, event_hash
from app.models import DisclosureEvent
from tests.disclosures.helpers import (
    OTHER_VILLAGE,
    PUBLIC,
    STAFF,
    draft,
    finance,
    finance_rows,
    people,
    publish,
    published,
    subsidy,
)

pytestmark = pytest.mark.usefixtures("seeded")


async def test_a_draft_never_leaks(client: AsyncClient, connection: AsyncConnection) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    assert d["status"] == "draft" and d["version"] == 1
    assert d["totals"] == {
        "opening_balance": "12000.00",
        "income": "50000.00",
        "expense": "9000.00",
        "closing_balance": "53000.00",
    }
    assert (await client.get(f"{PUBLIC}/{d['id']}", headers=p.resident)).status_code == 404
    assert (await client.get(f"{PUBLIC}/{d['id']}")).status_code == 404
    listed = (await client.get(PUBLIC, headers=p.resident)).json()["items"]
    assert d["id"] not in [i["id"] for i in listed]
    found = (await client.get(f"{PUBLIC}?q=财务&region_code=511702000000")).json()["items"]
    assert d["id"] not in [i["id"] for i in found]
    # Another village's committee does not even see that it exists.
    assert (await client.get(f"{STAFF}/{d['id']}", headers=p.outsider)).status_code == 404


async def test_publishing_needs_a_second_person_from_the_committee(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    r = await publish(client, p.clerk, d)
    assert r.status_code == 403, r.text
    assert (await publish(client, p.supervisor, d)).status_code == 403
    assert (await publish(client, p.outsider, d)).status_code == 404
    # A committee member who drafted cannot review their own draft.
    own = await draft(client, p.committee_a, finance(period="2026-09", title="九月财务收支公开"))
    r = await publish(client, p.committee_a, own)
    assert r.status_code == 403 and "审核人不能是起草" in r.json()["detail"]
    r = await publish(client, p.committee_b, own)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "published" and out["reviewer_name"] == "d.comb"
    # Publishing twice is a state error, not a silent success.
    assert (await publish(client, p.committee_b, out)).status_code == 409


async def test_only_drafts_change_and_versions_guard_races(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    url = f"{STAFF}/{d['id']}"
    r = await client.patch(
        url, headers=p.clerk, json={"expected_version": 1, "title": "十月财务公开（修订）"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["lock_version"] == 2
    stale = await client.patch(
        url, headers=p.clerk, json={"expected_version": 1, "title": "又一次"}
    )
    assert stale.status_code == 409
    assert (await client.get(url, headers=p.clerk)).json()["title"] == "十月财务公开（修订）"
    bad = await client.patch(
        url, headers=p.clerk, json={"expected_version": 2, "period": "2026-Q3"}
    )
    assert bad.status_code == 400
    pub = await publish(client, p.committee_a, r.json())
    assert pub.status_code == 200
    frozen = await client.patch(
        url, headers=p.clerk, json={"expected_version": 3, "title": "改一改"}
    )
    assert frozen.status_code == 409


async def test_balance_is_checked_and_the_breaking_row_named(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    rows = finance_rows()
    rows[1]["balance"] = "53399.05"  # a transposed digit on row 2
    r = await client.post(STAFF, headers=p.clerk, json=finance(rows=rows))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid_rows"
    assert [e["row"] for e in body["rows"]] == [2]
    r = await client.post(STAFF, headers=p.clerk, json=finance(closing_balance="53000.10"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_rows"
    assert "53000.10" in r.json()["detail"] or "53,000.10" in r.json()["detail"]
    no_balance = finance()
    del no_balance["opening_balance"]
    assert (await client.post(STAFF, headers=p.clerk, json=no_balance)).status_code == 400
    r = await client.post(STAFF, headers=p.clerk, json=subsidy(opening_balance="1.00"))
    assert r.status_code == 400
    float_money = finance(opening_balance="12000.001")
    assert (await client.post(STAFF, headers=p.clerk, json=float_money)).status_code == 422
    # Nothing half-written by any of these.
    listed = (await client.get(STAFF, headers=p.clerk)).json()["items"]
    assert listed == []


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"period": "2026-13"}, 422, None),
        ({"period_kind": "quarter"}, 422, None),
        ({"category": "lottery"}, 422, None),
        ({"region_code": "511702005000"}, 400, "bad_request"),  # a township, not a village
        ({"region_code": "511702999999"}, 404, "not_found"),
        ({"region_code": OTHER_VILLAGE}, 403, "forbidden"),  # not the clerk's village
        (
            {"rows": [{"date": "2026-10-40", "subject": "x", "income": "1", "handler": "李"}]},
            400,
            "invalid_rows",
        ),
        ({"rows": "not a list"}, 422, None),
        ({"title": ""}, 422, None),
        ({"media_ids": ["nope"]}, 404, "media_not_found"),
        ({"unexpected": 1}, 422, None),
    ],
)
async def test_bad_drafts_are_refused(
    client: AsyncClient,
    connection: AsyncConnection,
    change: dict[str, object],
    status: int,
    error: str | None,
) -> None:
    p = await people(client, connection)
    r = await client.post(STAFF, headers=p.clerk, json=finance(**change))
    assert r.status_code == status, r.text
    if error is None:  # payload validation: a Chinese summary and the list of field errors
        assert r.json()["error"] == "validation_error" and r.json()["errors"]
    else:
        assert r.json()["error"] == error
    assert (await client.get(STAFF, headers=p.clerk)).json()["items"] == []


async def test_residents_see_names_and_id_numbers_masked(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await published(client, p, subsidy(body="有疑问可拨打 13912345678 咨询"))
    public = (await client.get(f"{PUBLIC}/{d['id']}", headers=p.resident)).json()
    assert [r["name"] for r in public["rows"]] == ["张*明", "欧**明"]
    assert public["rows"][0]["id_number"] == "1101********002X"
    assert "13912345678" not in public["body"]
    assert public["question_item"]["code"] == "0303"
    staff = (await client.get(f"{STAFF}/{d['id']}", headers=p.clerk)).json()
    assert staff["rows"][0]["name"] == "张三明"
    assert staff["rows"][0]["id_number"] == "11010519491231002X"


async def test_a_correction_is_a_new_version_and_the_old_stays_visible(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    v1 = await published(client, p, finance())
    rows = finance_rows()
    rows[2]["expense"], rows[2]["balance"] = "399.00", "53000.50"
    fix = await client.post(
        f"{STAFF}/{v1['id']}/correct",
        headers=p.clerk,
        json={"reason": "办公用品凭证金额录入有误", "rows": rows, "closing_balance": "53000.50"},
    )
    assert fix.status_code == 201, fix.text
    v2 = fix.json()
    assert (v2["version"], v2["status"], v2["supersedes_id"]) == (2, "draft", v1["id"])
    # Until the committee publishes it, residents still read version 1.
    assert (await client.get(f"{PUBLIC}/{v2['id']}")).status_code == 404
    again = await client.post(
        f"{STAFF}/{v1['id']}/correct", headers=p.clerk, json={"reason": "再改一次试试"}
    )
    assert again.status_code == 409
    assert (await publish(client, p.committee_b, v2)).status_code == 200
    old = (await client.get(f"{PUBLIC}/{v1['id']}")).json()
    assert old["status"] == "superseded" and old["superseded_by_id"] == v2["id"]
    new = (await client.get(f"{PUBLIC}/{v2['id']}")).json()
    assert new["correction_reason"] == "办公用品凭证金额录入有误"
    assert [(h["version"], h["status"]) for h in new["history"]] == [
        (1, "superseded"),
        (2, "published"),
    ]
    assert new["totals"]["closing_balance"] == "53000.50"
    listed = [i["id"] for i in (await client.get(PUBLIC, headers=p.resident)).json()["items"]]
    assert listed == [v2["id"]]
    drafted = await draft(client, p.clerk, subsidy())
    r = await client.post(
        f"{STAFF}/{drafted['id']}/correct", headers=p.clerk, json={"reason": "草稿不能更正"}
    )
    assert r.status_code == 409


async def test_withdrawal_hides_it_and_needs_a_reason(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await published(client, p, finance())
    url = f"{STAFF}/{d['id']}/withdraw"
    short = await client.post(
        url, headers=p.clerk, json={"expected_version": d["lock_version"], "reason": "错"}
    )
    assert short.status_code == 422
    r = await client.post(
        url,
        headers=p.committee_b,
        json={"expected_version": d["lock_version"], "reason": "期间填写错误，重新发布"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn"
    assert (await client.get(f"{PUBLIC}/{d['id']}")).status_code == 404
    assert (await client.get(PUBLIC, headers=p.resident)).json()["items"] == []
    again = await client.post(
        url,
        headers=p.clerk,
        json={"expected_version": r.json()["lock_version"], "reason": "再撤一次"},
    )
    assert again.status_code == 409


async def test_views_are_counted_and_the_village_is_the_default(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await published(client, p, finance())
    for _ in range(3):
        assert (await client.get(f"{PUBLIC}/{d['id']}", headers=p.resident)).status_code == 200
    page = (await client.get(PUBLIC, headers=p.resident)).json()["items"]
    assert [(i["id"], i["view_count"]) for i in page] == [(d["id"], 3)]
    assert (await client.get(PUBLIC)).status_code == 400  # no login, no village given
    other = (await client.get(f"{PUBLIC}?region_code={OTHER_VILLAGE}")).json()["items"]
    assert other == []
    by_category = f"{PUBLIC}?region_code=511702005001&category=subsidy"
    assert (await client.get(by_category)).json()["items"] == []
    by_period = (await client.get(f"{PUBLIC}?region_code=511702005001&period=2026")).json()
    assert [i["id"] for i in by_period["items"]] == [d["id"]]
    assert (await client.get(f"{PUBLIC}?period=26")).status_code == 422


async def test_every_change_is_a_chained_event(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    d = await draft(client, p.clerk, finance())
    r = await client.patch(
        f"{STAFF}/{d['id']}", headers=p.clerk, json={"expected_version": 1, "body": "补充说明"}
    )
    assert (await publish(client, p.committee_a, r.json())).status_code == 200
    fix = await client.post(
        f"{STAFF}/{d['id']}/correct", headers=p.clerk, json={"reason": "补充附件说明"}
    )
    assert (await publish(client, p.committee_b, fix.json())).status_code == 200
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        events = list(
            (
                await s.execute(
                    select(DisclosureEvent)
                    .where(DisclosureEvent.series_id == d["id"])
                    .order_by(DisclosureEvent.seq)
                )
            ).scalars()
        )
    assert [e.kind for e in events] == [
        "created",
        "edited",
        "published",
        "correction_drafted",
        "superseded",
        "published",
    ]
    prev = GENESIS
    for e in events:
        assert e.prev_hash == prev and e.hash == event_hash(prev, e)
        prev = e.hash
    # `ydt audit verify` walks disclosure chains too, and names an edited event.
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as s:
        assert (await verify(s)).first_break is None
        await s.execute(
            update(DisclosureEvent)
            .where(DisclosureEvent.series_id == d["id"], DisclosureEvent.seq == 3)
            .values(note="审核意见被改过")
        )
        report = await verify(s)
        assert report.disclosure_series >= 1
        assert report.first_break is not None
        broken = report.first_break
        assert (broken.complaint_id, broken.seq) == (f"disclosure:{d['id']}", 3)
        assert "edited" in broken.reason
        await s.rollback()


async def test_withdrawing_takes_its_pending_correction_with_it(
    client: AsyncClient, connection: AsyncConnection
) -> None:
    p = await people(client, connection)
    v1 = await published(client, p, finance())
    fix = await client.post(
        f"{STAFF}/{v1['id']}/correct", headers=p.clerk, json={"reason": "期末余额录入有误"}
    )
    assert fix.status_code == 201
    url = f"{STAFF}/{v1['id']}/withdraw"
    body = {"expected_version": v1["lock_version"], "reason": "整期数据需重新核对"}
    assert (await client.post(url, headers=p.outsider, json=body)).status_code == 404
    assert (await client.post(url, headers=p.resident, json=body)).status_code == 403
    stale = {**body, "expected_version": v1["lock_version"] + 5}
    assert (await client.post(url, headers=p.clerk, json=stale)).status_code == 409
    assert (await client.post(url, headers=p.clerk, json=body)).status_code == 200
    draft_v2 = (await client.get(f"{STAFF}/{fix.json()['id']}", headers=p.clerk)).json()
    assert draft_v2["status"] == "withdrawn"
    assert "整期数据需重新核对" in draft_v2["withdraw_reason"]
    # Nothing left to publish or correct in that series.
    assert (await publish(client, p.committee_b, draft_v2)).status_code == 409
    again = await client.post(
        f"{STAFF}/{v1['id']}/correct", headers=p.clerk, json={"reason": "再更正一次"}
    )
    assert again.status_code == 409
