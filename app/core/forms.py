"""A form's body is read before the request's writer session begins.

FastAPI reads a JSON body, and a route's declared ``Form()`` fields, before it
solves the route's dependencies. A route that reads its form itself (the
console's pages, the public site's forms, Open311's POST) read it after them,
inside the writer session its dependencies had opened: on SQLite holding the
process's writer lock, and from the session's first statement the database's
write lock, for as long as the browser took to send the body. A cadre's
evidence photo on a township line, or a stranger dribbling a sign-in form,
held every resident's filing for that long; on PostgreSQL the body's time was
spent holding a pooled connection inside a transaction.

``db.get_session`` and ``db.get_read_session`` therefore read a form's body
first (``read_form``), under
the request's body cap (app/core/boundary.py), and the parsed form is kept on
the request, so the route's own ``request.form()`` gets the same one.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData

# Evidence: the API takes at most 13 media ids per action or filing.
MAX_FILES = 13
MAX_FIELDS = 200

_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def has_form(request: Request) -> bool:
    """A request whose body is a form (by its declared type)."""
    if request.method not in _BODY_METHODS:
        return False
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind in _FORM_TYPES


async def read_form(request: Request) -> FormData:
    """The request's form, parsed once: a later ``request.form()`` returns it."""
    return await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)


async def read_first(request: Request) -> None:
    """Read the body now if it is a form (a session dependency's first step)."""
    if has_form(request):
        await read_form(request)
