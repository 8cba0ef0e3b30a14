"""The staff console (工作台): server-rendered pages under ``/console``.

One router module per area of work (``auth``, ``queue``, ``case``, ``intake``,
``inbox``), all built on the same plumbing:

* ``templating.render`` renders a Jinja2 template with the signed-in user, the
  CSRF token and the navigation, and adds the security headers;
* ``dependencies`` gives ``ConsoleUser`` (the browser session, or a redirect to
  the sign-in page) and ``CsrfForm`` (the parsed form of a state-changing
  request, or 403 when its CSRF token is missing or wrong);
* ``routing.ConsoleRoute`` turns any ``AppError`` into an HTML error page with
  the same status the API would answer (a case out of scope is 404 here too);
* ``navigation.NAV`` lists the top-level pages and who sees them.

Pages never hold a rule of their own: they call the services the API calls
(``app/workflow``, ``app/staff``, ``app/stats``…), so what a page offers is
exactly what the API allows. See README "Staff console".
"""
