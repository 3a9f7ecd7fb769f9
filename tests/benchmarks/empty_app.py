"""The smallest Flask app, served like the real one, for the HTTP benchmark's ceiling: what
gunicorn's sync workers and Flask cost on this machine before any of our code runs."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def answer() -> dict[str, bool]:
    """A small JSON answer, like an API read."""
    return {"ok": True}
