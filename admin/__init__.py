"""The admin UI: Flask-Admin views behind Flask-Security login and role checks."""

from __future__ import annotations

from flask import Flask, redirect, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_security import current_user


class SecureIndexView(AdminIndexView):
    """The admin home page; signed-in users only."""

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.is_active)

    def inaccessible_callback(self, name: str, **kwargs: object):  # noqa: ANN201
        return redirect(url_for("security.login", next="/admin/"))

    @expose("/")
    def index(self):  # noqa: ANN201
        return self.render("admin/index.html")


def init_admin(app: Flask) -> Admin:
    """Build a new Admin for ``app`` (a module-level one breaks a second ``create_app``)."""
    admin = Admin(app, name="Policy service", index_view=SecureIndexView(url="/admin"))

    @app.route("/")
    def root():  # noqa: ANN202
        return redirect("/admin/")

    return admin
