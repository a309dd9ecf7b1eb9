"""The webhook signature: what a receiver checks, and what it must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main
from proxy.jobs.signature import sign, signature_of, verify_signature

SECRET = "whsec_test"
BODY = b'{"id":"job_x","type":"image.job.succeeded"}'
NOW = 1_800_000_000


def test_a_signature_checks_out_against_its_body_and_secret() -> None:
    header = sign(SECRET, BODY, NOW)
    assert header == f"t={NOW},v1={signature_of(SECRET, NOW, BODY)}"
    assert verify_signature(SECRET, BODY, header, now=NOW + 5)


@pytest.mark.parametrize("body", [BODY + b" ", BODY.replace(b"succeeded", b"failed"), b""])
def test_a_tampered_body_fails(body: bytes) -> None:
    assert not verify_signature(SECRET, body, sign(SECRET, BODY, NOW), now=NOW)


def test_another_secret_fails() -> None:
    assert not verify_signature("whsec_other", BODY, sign(SECRET, BODY, NOW), now=NOW)


def test_an_old_or_future_timestamp_fails_even_with_a_matching_digest() -> None:
    header = sign(SECRET, BODY, NOW)
    assert not verify_signature(SECRET, BODY, header, now=NOW + 301)
    assert not verify_signature(SECRET, BODY, header, now=NOW - 301)
    assert verify_signature(SECRET, BODY, header, now=NOW + 3600, tolerance_s=3601)


def test_a_timestamp_moved_forward_breaks_the_digest() -> None:
    digest = signature_of(SECRET, NOW, BODY)
    assert not verify_signature(SECRET, BODY, f"t={NOW + 100},v1={digest}", now=NOW + 100)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", f"v1={signature_of(SECRET, NOW, BODY)}", f"t={NOW}",
                                    f"t={NOW},v0={signature_of(SECRET, NOW, BODY)}"])
def test_a_malformed_header_fails(header: str) -> None:
    assert not verify_signature(SECRET, BODY, header, now=NOW)


def test_any_v1_entry_may_match() -> None:
    header = f"t={NOW},v1=deadbeef,v1={signature_of(SECRET, NOW, BODY)}"
    assert verify_signature(SECRET, BODY, header, now=NOW)


def test_the_cli_verifies_a_saved_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "body.json"
    saved.write_bytes(BODY)
    monkeypatch.setenv("BOLTGATE_WEBHOOK_SECRET", SECRET)
    assert main(["webhooks", "verify", "--signature", sign(SECRET, BODY), str(saved)]) == 0
    saved.write_bytes(BODY + b"x")
    assert main(["webhooks", "verify", "--signature", sign(SECRET, BODY), str(saved)]) == 1
    monkeypatch.delenv("BOLTGATE_WEBHOOK_SECRET")
    assert main(["webhooks", "verify", "--signature", sign(SECRET, BODY), str(saved)]) == 2
    assert capsys.readouterr().out.splitlines() == ["valid", "invalid: the signature does not match this body "
                                                    "and secret, or its timestamp is too old"]
