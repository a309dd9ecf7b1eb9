"""The prompts of a bulk run: one from the command line, or a file of lines.

A line of the file is either a plain prompt or, when it starts with ``{``, a JSON object with
per-line options (``prompt`` is required; ``name``, ``n``, ``size``, ``steps``, ``seed``,
``negative_prompt``, ``output_format``, ``model`` override the command's flags). Blank lines and
lines starting with ``#`` are skipped. Anything else wrong in a line is a ``BulkInputError``
naming the line, never a traceback: a file of a thousand prompts is refused before the first one
is paid for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import BulkInputError
from proxy.bulk.names import check_output_name, default_output_name

EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


class PromptOptions(BaseModel):
    """What a line may set; the command's flags give the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    prompt: str = Field(min_length=1)
    name: str | None = Field(default=None, validation_alias=AliasChoices("name", "output"))
    n: int = 1
    size: str = "1024x1024"
    steps: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"
    model: str | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is blank")
        return value

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/images/generations`` body (images come back inline, as base64)."""
        fields = self.model_dump(exclude={"name"}, exclude_none=True)
        return {**fields, "response_format": "b64_json"}


@dataclass(frozen=True, slots=True)
class BulkPrompt:
    """One request of the run, with the names its images are written under."""

    line: int
    """1-based line in the prompts file (0: the prompt given on the command line)."""
    options: PromptOptions
    idempotency_key: str
    name: str

    @property
    def file_names(self) -> list[str]:
        ext = EXTENSIONS[self.options.output_format]
        if self.options.n == 1:
            return [f"{self.name}.{ext}"]
        return [f"{self.name}-{index}.{ext}" for index in range(1, self.options.n + 1)]

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line else "the prompt"


def idempotency_key(body: dict[str, Any], occurrence: int, salt: str) -> str:
    """The same request (prompt and options) gets the same key in every run, so a retry or a
    rerun is replayed by the gateway and never paid twice. The n-th identical line gets its own
    key (``occurrence``): two identical lines ask for two sets of images. ``salt`` lets a user
    ask for fresh images on purpose."""
    canonical = json.dumps({"body": body, "occurrence": occurrence, "salt": salt},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "bulk-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


OPTION_NAMES = (*PromptOptions.model_fields, "output")


def _options(raw: dict[str, Any], defaults: dict[str, Any], where: str) -> PromptOptions:
    unknown = sorted(set(raw) - set(OPTION_NAMES))
    if unknown:
        raise BulkInputError(f"{where}: unknown option {unknown[0]!r} (known: {', '.join(OPTION_NAMES)})")
    try:
        return PromptOptions.model_validate({**defaults, **raw})
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "line"
        raise BulkInputError(f"{where}: {field}: {first['msg']}") from None


def _parse_line(text: str, number: int) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if not stripped.startswith("{"):
        return {"prompt": stripped}
    try:
        raw = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise BulkInputError(f"line {number}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(raw, dict):
        raise BulkInputError(f"line {number}: a JSON line must be an object")
    return raw


def read_prompt_file(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The file's prompt lines, numbered, as raw option objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BulkInputError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise BulkInputError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise BulkInputError(f"{path}: cannot be read ({error.strerror})") from None
    lines = [(number, raw) for number, line in enumerate(text.splitlines(), 1)
             if (raw := _parse_line(line, number)) is not None]
    if not lines:
        raise BulkInputError(f"{path}: no prompts in the file")
    return lines


def plan_prompts(lines: list[tuple[int, dict[str, Any]]], defaults: dict[str, Any], salt: str = "") -> list[BulkPrompt]:
    """Validate every line, give each its key and names, and refuse two prompts writing one file."""
    seen: dict[str, int] = {}
    owners: dict[str, str] = {}
    planned: list[BulkPrompt] = []
    for number, raw in lines:
        where = f"line {number}" if number else "the prompt"
        options = _options(raw, defaults, where)
        body = options.body()
        canonical = json.dumps(body, sort_keys=True)
        occurrence = seen.get(canonical, 0)
        seen[canonical] = occurrence + 1
        key = idempotency_key(body, occurrence, salt)
        if options.name is not None:
            try:
                name = check_output_name(options.name)
            except ValueError as error:
                raise BulkInputError(f"{where}: name: {error}") from None
        else:
            name = default_output_name(options.prompt, key)
        prompt = BulkPrompt(line=number, options=options, idempotency_key=key, name=name)
        for file_name in prompt.file_names:
            if file_name.lower() in owners:
                raise BulkInputError(f"{where}: writes {file_name}, as {owners[file_name.lower()]} does")
            owners[file_name.lower()] = where
        planned.append(prompt)
    return planned
