"""Every error class the gateway raises is defined in ``core/errors.py`` and nowhere else.

One module holds the whole tree, so its docstring can draw all of it and one handler can map all
of it to HTTP. Classes are read from the source (``ast``): a class is an error class when one of
its bases is a built-in exception, a class of ``core.errors``, a name ending in ``Error`` or
``Exception`` (a library's), or another error class found here. The vendor simulators are left
out on purpose: they play other companies' servers, and their errors are those servers' answers.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import core.errors

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "pricing", "backends", "proxy")
HOME = ROOT / "core" / "errors.py"
NOT_THE_GATEWAY = (ROOT / "backends" / "simulators",)

BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _classes(paths: list[Path], root: Path) -> list[tuple[str, str, list[str]]]:
    """(where, class name, base names) of every class defined in ``paths``."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                found.append((f"{path.relative_to(root)}:{node.lineno}", node.name,
                              [_base_name(base) for base in node.bases]))
    return found


def error_classes_in(paths: list[Path], root: Path = ROOT) -> list[str]:
    """``path:line Name`` of every error class defined in ``paths``."""
    known = BUILTIN_ERRORS | {name for name, value in vars(core.errors).items()
                              if isinstance(value, type) and issubclass(value, BaseException)}
    classes = _classes(paths, root)
    errors: dict[str, str] = {}
    grew = True
    while grew:  # a class deriving from an error class found in the previous pass is one too
        grew = False
        for where, name, bases in classes:
            if where in errors:
                continue
            if any(base in known or base.endswith(("Error", "Exception")) for base in bases):
                errors[where] = name
                known.add(name)
                grew = True
    return sorted(f"{where} {name}" for where, name in errors.items())


def _shipping_modules() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
            if path != HOME and not any(path.is_relative_to(skip) for skip in NOT_THE_GATEWAY)]


def test_no_module_but_core_errors_defines_an_error_class() -> None:
    assert error_classes_in(_shipping_modules()) == []


def test_the_finder_finds_error_classes_by_any_route(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "import aiohttp\n"
        "from core.errors import VendorUnavailable\n"
        "class Busy(VendorUnavailable): ...\n"
        "class Broken(ValueError): ...\n"
        "class Wrapped(aiohttp.ClientError): ...\n"
        "class Deeper(Busy): ...\n"
        "class Record: ...\n"
        "class Table(dict): ...\n"
    )

    assert error_classes_in([module], tmp_path) == [
        "module.py:3 Busy", "module.py:4 Broken", "module.py:5 Wrapped", "module.py:6 Deeper"]
