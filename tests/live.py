"""Real ``policy-service`` processes for the tests that need them: a server on a loopback port
(gunicorn, as ``serve`` runs it) and one-off commands, over a database the test names."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECRET = "live-test-secret-not-for-production"


def policy_service_bin() -> str:
    """The ``policy-service`` script of this interpreter's environment."""
    here = Path(sys.executable).parent / "policy-service"
    return str(here) if here.exists() else (shutil.which("policy-service") or "policy-service")


def command_env(database_url: str) -> dict[str, str]:
    """The environment of a command over ``database_url``."""
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, seconds: float) -> None:
    """Wait for ``url`` to answer with any HTTP status."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback URL we built
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no server answered at {url} within {seconds} s")


@contextmanager
def served(database_url: str, log: Path, *args: str, workers: int = 2,
           port: int | None = None) -> Iterator[str]:
    """Run ``policy-service serve`` (or ``args``, e.g. ``quickstart``) on a free port; yield its
    base URL; stop it (gunicorn stops its workers on SIGTERM) when the block ends."""
    port = port or free_port()
    command = list(args) or ["serve", "--workers", str(workers)]
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [policy_service_bin(), *command, "--port", str(port)],
            env=command_env(database_url), stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/login", 45)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
