"""The docs' capability table is the router's: printed from the same data, kept equal to the README."""

from __future__ import annotations

from pathlib import Path

from backends.capability_table import capabilities_by_backend, render_behaviour_table, render_capability_table
from backends.vendors.registry import VENDOR_SPECS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_backend_has_a_row() -> None:
    table = render_capability_table()
    assert set(capabilities_by_backend()) == {*VENDOR_SPECS, "local"}
    for name in capabilities_by_backend():
        assert f"| `{name}` |" in table


def test_rows_state_what_the_router_filters_on() -> None:
    rows = {line.split("|")[1].strip(" `"): line for line in render_capability_table().splitlines()[2:]}
    assert "| 1-12 |" in rows["runflow"] and "| 1-1 |" in rows["runflow"]
    assert "| 1, 2, 4, 8 |" in rows["local"]
    assert "| 256-1280 |" in rows["eachlabs"] and "| yes |" in rows["eachlabs"]
    assert rows["aigateway"].startswith("| `aigateway` | not sent |")
    assert "| 1-1 | no | no | yes | no |" in rows["imageapi"]  # no seed, no guidance


def test_the_readme_shows_the_table_as_printed() -> None:
    readme = README.read_text()
    between = readme.split("<!-- capabilities:start -->\n", 1)[1].split("\n<!-- capabilities:end -->", 1)[0]
    assert between == render_capability_table()


def test_the_readme_shows_what_is_confirmed_and_what_is_assumed_as_printed() -> None:
    readme = README.read_text()
    between = readme.split("<!-- behaviours:start -->\n", 1)[1].split("\n<!-- behaviours:end -->", 1)[0]
    assert between == render_behaviour_table()


def test_every_vendor_behaviour_is_listed_with_its_source_or_as_assumed() -> None:
    table = render_behaviour_table()
    for name, spec in VENDOR_SPECS.items():
        for behaviour in spec.behaviours:
            expected = behaviour.source if behaviour.confirmed else "**assumed**"
            assert f"| `{name}` | {behaviour.what.replace('|', '/')} | {expected} |" in table
