"""A recorded request is what the admin API lists."""

from __future__ import annotations

from backends.simulators.recording import RecordedRequest


def test_a_recorded_request_serialises_for_the_admin_api() -> None:
    recorded = RecordedRequest("POST", "/x", {"a": "b"}, {"k": 1})

    assert recorded.to_json() == {"method": "POST", "path": "/x", "headers": {"a": "b"}, "json": {"k": 1}}
