from app.core.errors import AppError, Conflict, NotFound


class UsernameTaken(Conflict):
    code = "username_taken"


class UnitNotFound(NotFound):
    code = "unit_not_found"


class DepartmentNotFound(NotFound):
    code = "department_not_found"


class WeakPassword(AppError):
    """A password the policy refuses (app/staff/passwords.py): a payload error."""

    status_code, code = 422, "weak_password"


class CannotChangeOwnAccount(Conflict):
    code = "own_account"
