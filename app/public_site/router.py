"""The resident site: ``/q/{scene}`` (what a village QR poster encodes) and
its pages, plus ``/track`` for a resident who came by letter or phone.

Thin on purpose: each page finds the village, calls the service the API calls,
and renders. Errors are Chinese pages (``ResidentRoute``).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from app.complaints import service as complaints_service
from app.console import security as console_security
from app.core.config import Settings
from app.core.db import read_session
from app.core.deps import (
    ClockDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    SharedDep,
    StoreDep,
    WeChatDep,
)
from app.core.ratelimit import client_ip
from app.core.schemas import CONTROL_CHARS_SINGLE_LINE, DB_INT_MAX
from app.disclosures import rows as rowlib
from app.disclosures import search as disclosures_search
from app.disclosures import service as disclosures_service
from app.disclosures import views as disclosure_views
from app.disclosures.schemas import DisclosureRead
from app.models.enums import DisclosureCategory
from app.public_site import security, service
from app.public_site.pages import error_page, render, resident_router
from app.regions.schemas import SceneRead
from app.stats import service as stats_service

router = resident_router()

NOT_FOUND = (
    "办理编号或查询码不正确。请核对回执上的编号和查询码；"
    "反映的是其他村（社区）的事项时，请扫描该村的二维码查询。"
)


@router.get("/q/{scene}")
async def home(
    scene: str, request: Request, session: ReadSessionDep, wechat: WeChatDep
) -> Response:
    place = await service.place(session, scene)
    return render(request, "home.html", place=place, wechat_on=wechat.configured, cacheable=True)


@router.get("/q/{scene}/open")
async def open_miniprogram(
    scene: str,
    request: Request,
    settings: SettingsDep,
    wechat: WeChatDep,
    shared: SharedDep,
    clock: ClockDep,
) -> Response:
    """To the mini-program through a WeChat link; when WeChat cannot make one,
    a page that says how to find the mini-program by hand. The village is
    read, and its session closed, before WeChat is asked: no connection is
    held while WeChat answers."""
    async with read_session(request) as session:
        place = await service.place(session, scene)
    now = clock.now()
    link = await service.open_link(
        wechat,
        settings,
        shared,
        scene=place.scene,
        kept=request.cookies.get(security.LINK_COOKIE),
        ip=client_ip(request, settings),
        now=now,
    )
    if link.url is None:
        return render(request, "open_fallback.html", place=place)
    response = RedirectResponse(link.url, status_code=303)
    if link.cookie is not None and link.expires_at is not None:
        response.set_cookie(
            security.LINK_COOKIE,
            link.cookie,
            max_age=int((link.expires_at - now).total_seconds()),
            path="/q/",
            secure=console_security.is_https(request, settings),
            httponly=True,
            samesite="lax",
        )
    console_security.apply_headers(response, settings)
    return response


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) <= 3 and int(raw) >= 1 else 1


@router.get("/q/{scene}/disclosures")
async def disclosures(
    scene: str,
    request: Request,
    session: ReadSessionDep,
    q: str | None = None,
    category: str | None = None,
    page: str | None = None,
) -> Response:
    place = await service.place(session, scene)
    words, problem = service.clean_search(q)
    number = _page_number(page)
    kinds = {c.value: c for c in DisclosureCategory}
    kind = kinds.get(category) if category else None
    found = []
    if problem is None:
        found = await disclosures_search.public_list(
            session,
            region_code=place.village.code,
            category=kind,
            period=None,
            q=words,
            limit=service.PAGE_SIZE + 1,
            offset=(number - 1) * service.PAGE_SIZE,
        )
    names = await disclosure_views.region_names(session, [place.village.code])
    items = [disclosure_views.brief(d, names.get(d.region_code, "")) for d in found]
    return render(
        request,
        "disclosures.html",
        status_code=400 if problem else 200,
        cacheable=True,
        place=place,
        q=words,
        problem=problem,
        items=items[: service.PAGE_SIZE],
        more=len(items) > service.PAGE_SIZE,
        page=number,
    )


@router.get("/q/{scene}/disclosures/{disclosure_id}")
async def disclosure(
    scene: str,
    disclosure_id: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    place = await service.place(session, scene)
    did = int(disclosure_id) if disclosure_id.isdigit() and len(disclosure_id) <= 10 else 0
    if not 1 <= did <= DB_INT_MAX:
        raise disclosures_service.DisclosureNotFound("公开事项不存在或尚未发布")
    d = await disclosures_service.get_public(session, did, count_view=False)
    if d.region_code != place.village.code:  # another village's: not on this poster's site
        raise disclosures_service.DisclosureNotFound("公开事项不存在或尚未发布")
    d = await disclosures_service.get_public(session, did, count_view=True)
    read = await disclosure_views.read(session, store, settings, d, now=clock.now(), staff=False)
    assert isinstance(read, DisclosureRead)
    model = rowlib.ROW_MODEL[d.category]
    labels: dict[str, tuple[str, ...]] = getattr(model, "columns", {})
    columns = [(name, names[0]) for name, names in labels.items()]
    return render(request, "disclosure.html", cacheable=True, place=place, d=read, columns=columns)


@router.get("/q/{scene}/stats")
async def stats(scene: str, request: Request, session: ReadSessionDep, clock: ClockDep) -> Response:
    place = await service.place(session, scene)
    figures = await stats_service.public(session, place.village.code, now=clock.now())
    return render(request, "stats.html", cacheable=True, place=place, stats=figures)


# --- tracking ---------------------------------------------------------------------


def _track_form(
    request: Request,
    settings: Settings,
    place: SceneRead | None,
    *,
    now: datetime,
    status_code: int = 200,
    problem: str | None = None,
    tracking_no: str = "",
) -> Response:
    scope = place.scene if place else ""
    return render(
        request,
        "track.html",
        status_code=status_code,
        place=place,
        action=f"/q/{place.scene}/track" if place else "/track",
        form_token=security.form_token(settings, scope, now=now),
        problem=problem,
        tracking_no=tracking_no,
    )


def _field(value: object, limit: int) -> str:
    """A form field as typed on a phone: full-width letters and digits folded,
    spaces dropped; anything odd (control characters, far too long) is empty."""
    if not isinstance(value, str) or len(value) > limit * 4:
        return ""
    text = "".join(unicodedata.normalize("NFKC", value).split()).upper()
    if CONTROL_CHARS_SINGLE_LINE.search(text) or len(text) > limit:
        return ""
    return text


async def _track(
    request: Request,
    place: SceneRead | None,
    session: SessionDep,
    store: StoreDep,
    settings: Settings,
    shared: SharedDep,
    now: datetime,
) -> Response:
    if not console_security.same_origin(request):
        return error_page(request, 403, "请在本网站的查询页面填写后提交。", place=place)
    form = await request.form()
    tracking_no = _field(form.get("tracking_no"), 24)
    query_code = _field(form.get("query_code"), 16)
    token = form.get("form_token")
    scope = place.scene if place else ""
    if not isinstance(token, str) or not security.form_token_ok(settings, token, scope, now=now):
        return _track_form(
            request, settings, place, now=now, status_code=400,
            problem="页面已过期，请重新填写查询码后提交。", tracking_no=tracking_no,
        )  # fmt: skip
    # The API's budget, counted before the code is looked at.
    await complaints_service.limit_tracking(shared, client_ip(request, settings), now=now)
    if not 5 <= len(tracking_no) <= 24 or not 4 <= len(query_code) <= 16:
        return _track_form(
            request, settings, place, now=now, status_code=404,
            problem=NOT_FOUND, tracking_no=tracking_no,
        )  # fmt: skip
    try:
        case = await complaints_service.track(
            session,
            tracking_no,
            query_code,
            store,
            settings,
            now=now,
            region_code=place.village.code if place else None,
        )
    except complaints_service.ComplaintNotFound:
        return _track_form(
            request, settings, place, now=now, status_code=404,
            problem=NOT_FOUND, tracking_no=tracking_no,
        )  # fmt: skip
    again = f"/q/{place.scene}/track" if place else "/track"
    return render(request, "track_result.html", place=place, case=case, again=again)


@router.get("/q/{scene}/track")
async def track_form(
    scene: str, request: Request, session: ReadSessionDep, settings: SettingsDep, clock: ClockDep
) -> Response:
    place = await service.place(session, scene)
    return _track_form(request, settings, place, now=clock.now())


@router.post("/q/{scene}/track")
async def track_village(
    scene: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    shared: SharedDep,
    clock: ClockDep,
) -> Response:
    place = await service.place(session, scene)
    return await _track(request, place, session, store, settings, shared, clock.now())


@router.get("/track")
async def track_form_any(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    """For a resident who came by visit, phone or letter: the receipt's number
    and code, whatever the village. The receipt's QR code carries the number
    (``?no=``, see app/core/urls.py) so the resident only types the code."""
    number = _field(request.query_params.get("no", ""), 32)
    return _track_form(request, settings, None, now=clock.now(), tracking_no=number)


@router.post("/track")
async def track_any(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    shared: SharedDep,
    clock: ClockDep,
) -> Response:
    return await _track(request, None, session, store, settings, shared, clock.now())


@router.get("/q/{rest:path}")
async def unknown(request: Request, rest: str) -> Response:
    """Any other address under /q (a mistyped or damaged QR code) is the same
    friendly 404 page, not the API's JSON."""
    return error_page(request, 404, "二维码无效，请扫描村（社区）公示栏上的二维码")
