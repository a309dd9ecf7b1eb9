"""A client key's problems named by its place among ``api_keys``, never by the key.

``api_keys`` maps each client key (a secret) to its policy, so pydantic would name a problem by
the key itself. Each problem is renamed ``<key N>`` as its validation fails, N the entry's place
(from 1) in the mapping as written (a JSON object and a TOML table keep their order): with one bad
entry among several, the operator can tell which, and no message built from the error (ours or
pydantic's own) carries the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

UNPLACED = "<key ?>"
"""A key whose place is not known (not in the mapping validated): still never shown."""


def placeholder(position: int) -> str:
    """How the ``position``-th key (from 1) is shown instead of itself."""
    return f"<key {position}>"


def is_placeholder(part: object) -> bool:
    """Whether a location's part already shows a key by its place (or as ``UNPLACED``)."""
    return part == UNPLACED or (isinstance(part, str) and part.startswith("<key ") and part.endswith(">")
                                and part[5:-1].isdigit())


def validated_by_position(value: object, validate: Callable[[object], Any]) -> Any:
    """``validate(value)``, whose failure is raised again with each key in its locations replaced
    by its place in ``value``; each problem keeps its type, message and input."""
    try:
        return validate(value)
    except ValidationError as error:
        places = {str(key): index for index, key in enumerate(value, 1)} if isinstance(value, dict) else {}
        raise ValidationError.from_exception_data(error.title, [
            _renamed(problem, places) for problem in error.errors(include_url=False)]) from None


def _renamed(problem: Any, places: dict[str, int]) -> InitErrorDetails:
    loc: tuple[int | str, ...] = problem["loc"]
    if loc:
        first = str(loc[0])
        loc = (placeholder(places[first]) if first in places else UNPLACED, *loc[1:])
    return InitErrorDetails(type=PydanticCustomError(problem["type"], problem["msg"]), loc=loc,
                            input=problem["input"])
