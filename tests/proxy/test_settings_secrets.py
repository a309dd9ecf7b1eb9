"""The settings file holds no secret: keys, tokens and passwords come from the environment only."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from core.errors import InvalidSettings
from proxy.settings import Settings
from proxy.settings_reader import read_settings
from proxy.settings_secrets import SECRET_SETTINGS

SECRET = "s3cret-never-shown"


def file_with(tmp_path: Path, toml: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(toml)
    return path


@pytest.mark.parametrize(("toml", "setting", "variable"), [
    (f'admin_token = "{SECRET}"\n', "admin_token", "BOLTGATE_ADMIN_TOKEN"),
    (f'metrics_token = "{SECRET}"\n', "metrics_token", "BOLTGATE_METRICS_TOKEN"),
    (f'[api_keys]\n{SECRET} = {{ name = "team" }}\n', "api_keys", "BOLTGATE_API_KEYS"),
    (f'[jobs]\nwebhook_root_secret = "{SECRET}"\n', "jobs.webhook_root_secret", "BOLTGATE_JOBS__WEBHOOK_ROOT_SECRET"),
    (f'redis_url = "redis://:{SECRET}@redis:6379/0"\n', "redis_url", "BOLTGATE_REDIS_URL"),
], ids=["admin_token", "metrics_token", "api_keys", "webhook_root_secret", "redis_password"])
def test_a_secret_in_the_file_is_refused_with_the_variable_to_use(
    tmp_path: Path, toml: str, setting: str, variable: str
) -> None:
    path = file_with(tmp_path, toml)

    with pytest.raises(InvalidSettings) as refused:
        read_settings(path)

    assert f"- {setting}" in refused.value.message and variable in refused.value.message
    assert str(path) in refused.value.message
    assert SECRET not in refused.value.message


def test_the_same_secrets_from_the_environment_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_ADMIN_TOKEN", SECRET)
    monkeypatch.setenv("BOLTGATE_API_KEYS", f'["{SECRET}"]')
    monkeypatch.setenv("BOLTGATE_REDIS_URL", f"redis://:{SECRET}@redis:6379/0")

    settings = read_settings(file_with(tmp_path, 'routing_policy = "cheapest"\n'))

    assert settings.admin_token is not None and settings.admin_token.get_secret_value() == SECRET
    assert list(settings.api_keys) == [SECRET]
    assert settings.routing_policy == "cheapest"


def test_a_redis_url_without_a_password_may_stay_in_the_file(tmp_path: Path) -> None:
    settings = read_settings(file_with(tmp_path, 'redis_url = "redis://redis:6379/0"\n'))

    assert settings.redis_url == "redis://redis:6379/0"


def secret_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every setting typed as a secret, anywhere in the tree."""
    found: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        for kind in (annotation, *getattr(annotation, "__args__", ())):
            if kind is SecretStr:
                found.add((*prefix, name))
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                found |= secret_fields(kind, (*prefix, name))
    return found


def test_every_setting_typed_as_a_secret_is_refused_in_the_file() -> None:
    typed = secret_fields(Settings)

    assert ("jobs", "webhook_root_secret") in typed  # nested settings are searched too
    assert typed <= set(SECRET_SETTINGS)
