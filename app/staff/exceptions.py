from app.core.errors import Conflict, NotFound


class UsernameTaken(Conflict):
    code = "username_taken"


class UnitNotFound(NotFound):
    code = "unit_not_found"


class DepartmentNotFound(NotFound):
    code = "department_not_found"
