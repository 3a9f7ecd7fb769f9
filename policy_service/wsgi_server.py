"""Run the app under gunicorn from the ``serve`` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from policy_service import create_app

        return create_app()


def run_gunicorn(host: str, port: int, workers: int,
                 on_ready: Callable[[], None] | None = None) -> None:
    """Serve with ``workers`` sync worker processes bound to ``host:port``; ``on_ready`` runs
    once the port is open, and gunicorn's own start-up lines are left out so that what it
    prints is the last thing on the console before the request log."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        # No gunicorn access log: paths carry authorization numbers and claim references.
        # The app logs each request by its route pattern instead (policy_service.logging).
        "accesslog": None,
        "timeout": 60,
        # gunicorn's own 414 page has no security headers: let URLs up to its maximum through,
        # so the app's shorter limit (policy_service.request_guard) answers in problem+json.
        "limit_request_line": 8190,
    }
    if on_ready is not None:
        options["loglevel"] = "warning"
        options["when_ready"] = lambda _arbiter: on_ready()
    _Gunicorn(options).run()
