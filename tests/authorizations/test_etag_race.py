"""Two coordinators who read the same version and write at once: one wins, one gets 412."""

from __future__ import annotations

import threading
from collections import Counter

from flask import Flask

from policy_service.auth import create_token, create_user
from policy_service.extensions import db
from tests.factories import make_authorization, make_drug, make_patient, make_payer


def test_concurrent_patches_with_one_etag(app: Flask, committed_db: None) -> None:
    make_drug("J1745")
    make_authorization("RACE-1", patient=make_patient("RACE-P"), payer=make_payer("RACE"),
                       status="submitted")
    token = create_token(create_user("race@example.org", "coordinator", "long-enough-pw"))
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    etag = app.test_client().get("/api/v1/authorizations/RACE-1", headers=headers)
    # The request shared this test's app context and session: end its read transaction, or
    # SQLite would keep every writer waiting.
    db.session.rollback()
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    errors: list[BaseException] = []

    def write(reference: str) -> None:
        try:
            start.wait()
            response = app.test_client().patch(
                "/api/v1/authorizations/RACE-1", json={"payer_reference": reference},
                headers={**headers, "If-Match": etag.headers["ETag"]})
            with lock:
                statuses.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"REF-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert Counter(statuses) == {200: 1, 412: 3}
    final = app.test_client().get("/api/v1/authorizations/RACE-1", headers=headers).get_json()
    assert final["payer_reference"].startswith("REF-")
