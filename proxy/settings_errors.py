"""A settings error told without the secrets it came with.

pydantic's own message repeats each wrong input and names the path to it, and the path to a
client key's budget *is* the key (``api_keys.bg-....budget_credits``): printed at start-up, it
lands in logs and CI output. This rendering names the field and the problem only; a client key in
a path becomes ``<key 1>``, and no input value is ever shown.
"""

from __future__ import annotations

from pydantic import ValidationError

SECRET_MAPS = frozenset({"api_keys"})
"""Settings whose dictionary keys are secrets."""


def describe_settings_error(error: ValidationError) -> str:
    lines = [f"{error.error_count()} invalid setting(s):"]
    keys: dict[str, int] = {}
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        parts = [str(part) for part in item["loc"]]
        for index in range(len(parts) - 1):
            if parts[index] in SECRET_MAPS:
                parts[index + 1] = f"<key {keys.setdefault(parts[index + 1], len(keys) + 1)}>"
        lines.append(f"  {'.'.join(parts) or '(settings)'}: {item['msg']}")
    return "\n".join(lines)
