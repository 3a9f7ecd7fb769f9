"""Run the app under gunicorn from the ``serve`` command."""

from __future__ import annotations

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


def run_gunicorn(host: str, port: int, workers: int) -> None:
    """Serve with ``workers`` sync worker processes bound to ``host:port``."""
    _Gunicorn({
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "accesslog": "-",
        # The access log records method, path and status, never query strings or bodies.
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "timeout": 60,
    }).run()
