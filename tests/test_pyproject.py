"""What ``pyproject.toml`` promises about the dependencies, held against the environment the suite runs in."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def requirement(name: str) -> Requirement:
    found = [Requirement(line) for line in PYPROJECT["project"]["dependencies"] if Requirement(line).name == name]
    assert len(found) == 1, f"{name} is declared once"
    return found[0]


def test_uvicorn_is_pinned_to_a_minor_series_that_holds_the_installed_one() -> None:
    """``proxy/serving`` drives uvicorn's request cycle from the inside: the suite only vouches for
    the series it runs on, so the declared range must be closed above and contain it."""
    declared = requirement("uvicorn").specifier

    assert any(spec.operator == "<" for spec in declared), "uvicorn needs an upper bound"
    assert version("uvicorn") in declared
    major, minor, *_ = (int(part) for part in version("uvicorn").split("."))
    assert f"{major}.{minor + 1}.0" not in declared, "no later minor series than the one tested"
