"""The docs' capability table is the router's: printed from the same data, kept equal to the README."""

from __future__ import annotations

from pathlib import Path

from backends.capability_table import capabilities_by_backend, render_capability_table
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


def test_the_readme_shows_the_table_as_printed() -> None:
    readme = README.read_text()
    between = readme.split("<!-- capabilities:start -->\n", 1)[1].split("\n<!-- capabilities:end -->", 1)[0]
    assert between == render_capability_table()
