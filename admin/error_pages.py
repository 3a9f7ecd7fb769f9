"""Refusals and missing pages in the admin's layout with a way back; the API keeps problem+json."""

from __future__ import annotations

from flask import Flask, request
from flask_admin import Admin, BaseView, expose
from flask_security import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from policy_service.errors import http_problem, problem_response, wants_problem

# What each refusal tells the reader, beside the status.
EXPLANATIONS = {
    403: ("You do not have access to this page",
          "Your role does not include this page or action. Ask an administrator if you need it."),
    404: ("Page not found",
          "There is no page at this address, or the record it showed has been removed."),
    405: ("This action is not available here",
          "The page does not accept this kind of request. Go back and use the page's buttons."),
}


class ErrorPageView(BaseView):
    """Renders error pages with the admin's layout; never listed in the menu."""

    def is_visible(self) -> bool:
        """Keep the view out of the menu."""
        return False

    @expose("/")
    def index(self) -> str:
        """Nothing lives at the view's own address."""
        return self.page(404)

    def page(self, status: int) -> str:
        """Render the page explaining ``status``."""
        title, explanation = EXPLANATIONS.get(status, ("Something went wrong", ""))
        return self.render("admin/error.html", status=status, title=title,
                           explanation=explanation, path=request.path,
                           signed_in=bool(current_user.is_authenticated))


def init_error_pages(app: Flask, admin: Admin) -> None:
    """Answer 403, 404 and 405 outside the API with a page in the admin's layout."""
    view = ErrorPageView(name="Error", endpoint="error_page", url="/admin/error")
    admin.add_view(view)

    def handle(exc: HTTPException) -> Response | tuple[str, int]:
        if wants_problem():
            return problem_response(http_problem(exc))
        status = exc.code or 500
        return view.page(status), status

    for status in EXPLANATIONS:
        app.register_error_handler(status, handle)
