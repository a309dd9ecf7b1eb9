"""Settings: a TOML file names the routes, the environment overrides it, keys come from the env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backends.vendors.registry import VENDOR_SPECS
from core.errors import ImageRefused
from core.image_header import DECODER_MAX_PIXELS, open_bounded
from core.state.ledger_store import CLOSED_TTL_S
from proxy.settings import OutboundConfig, RegionConfig, RouteConfig, Settings
from tests.backends.vendors.hostile import png_declaring

PUBLIC_VENDORS = [name for name, spec in VENDOR_SPECS.items() if spec.facts.default_base_url]

ROUTES_TOML = """
routing_policy = "cheapest"
deadline_s = 20

[retry]
backoff_initial_s = 0.5
max_retry_after_s = 10

[[routes]]
vendor = "runflow"
priority = 10
weight = 3
key_env = "RUNFLOW_TEAM_API_KEY"
options = { model_path = "bytedance/sdxl-lightning" }
regions = [
  { name = "eu", base_url = "https://eu.runflow.example" },
  { name = "us", base_url = "https://us.runflow.example" },
]

[[routes]]
vendor = "eachlabs"
priority = 20

[[routes]]
vendor = "worker"
regions = [{ name = "gpu-1", base_url = "http://10.0.0.5:9000" }]
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(ROUTES_TOML)
    return path


def test_every_setting_has_a_default_for_one_machine() -> None:
    settings = Settings()

    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.routes == []
    assert settings.routing_policy == "priority"
    assert settings.state_backend == "sqlite"  # keys and spend survive a restart of `make run`
    assert settings.state_timeout_s == 2.0
    assert settings.simulators == "auto"
    assert settings.content_filter_action == "failover"
    assert settings.deadline_s == 60.0


def test_the_toml_file_is_read_when_passed(routes_file: Path) -> None:
    settings = Settings(config=routes_file)

    assert settings.routing_policy == "cheapest"
    assert settings.deadline_s == 20
    assert settings.retry.backoff_initial_s == 0.5
    assert settings.retry.max_retry_after_s == 10
    assert settings.retry.backoff_max_s == 4.0  # unset fields keep their defaults
    runflow, eachlabs, worker = settings.routes
    assert (runflow.vendor, runflow.priority, runflow.weight) == ("runflow", 10, 3)
    assert [(r.name, r.base_url) for r in runflow.regions] == [
        ("eu", "https://eu.runflow.example"), ("us", "https://us.runflow.example")]
    assert runflow.options == {"model_path": "bytedance/sdxl-lightning"}
    assert eachlabs.priority == 20
    assert worker.regions[0].base_url == "http://10.0.0.5:9000"


def test_the_toml_file_is_read_from_boltgate_config(routes_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_CONFIG", str(routes_file))

    settings = Settings()

    assert settings.routing_policy == "cheapest"
    assert [route.vendor for route in settings.routes] == ["runflow", "eachlabs", "worker"]


def test_the_environment_overrides_the_file(routes_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_DEADLINE_S", "7.5")
    monkeypatch.setenv("BOLTGATE_ROUTING_POLICY", "priority")
    monkeypatch.setenv("BOLTGATE_RETRY__MAX_RETRY_AFTER_S", "3")

    settings = Settings(config=routes_file)

    assert settings.deadline_s == 7.5
    assert settings.routing_policy == "priority"
    assert settings.retry.max_retry_after_s == 3
    assert settings.retry.backoff_initial_s == 0.5  # the file's value for the field the env left alone


def test_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_PORT", "9001")

    assert Settings().port == 9001
    assert Settings(port=9002).port == 9002


def test_a_route_is_enabled_only_when_its_key_variable_is_set(
    routes_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(config=routes_file)
    assert [route.vendor for route in settings.enabled_routes()] == ["worker"]  # keyless

    monkeypatch.setenv("EACHLABS_API_KEY", "el-secret")
    assert [route.vendor for route in settings.enabled_routes()] == ["eachlabs", "worker"]

    monkeypatch.setenv("RUNFLOW_API_KEY", "not the variable runflow's route names")
    assert not settings.routes[0].is_enabled
    monkeypatch.setenv("RUNFLOW_TEAM_API_KEY", "rf-secret")
    assert settings.routes[0].is_enabled
    assert settings.routes[0].api_key() == "rf-secret"


def test_an_empty_key_variable_does_not_enable_a_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEAPI_API_KEY", "")

    route = RouteConfig(vendor="imageapi")

    assert route.api_key() is None
    assert not route.is_enabled


def test_a_route_disabled_in_the_file_stays_disabled_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGATEWAY_API_KEY", "ag-secret")

    assert not RouteConfig(vendor="aigateway", enabled=False).is_enabled
    assert RouteConfig(vendor="aigateway").is_enabled


@pytest.mark.parametrize("vendor", PUBLIC_VENDORS)
def test_the_default_key_variable_is_vendor_api_key(vendor: str) -> None:
    assert RouteConfig(vendor=vendor).key_variable == f"{vendor.upper()}_API_KEY"


@pytest.mark.parametrize("vendor", PUBLIC_VENDORS)
def test_the_default_region_is_the_vendors_public_url(vendor: str) -> None:
    route = RouteConfig(vendor=vendor)

    assert [(r.name, r.base_url) for r in route.regions] == [
        ("default", VENDOR_SPECS[vendor].facts.default_base_url)]
    assert route.regions[0].base_url.startswith("https://")


def test_a_job_vendors_poll_pace_can_be_set_per_route() -> None:
    assert RouteConfig(vendor="runflow").poll_interval_s is None  # the vendor's documented pace
    assert RouteConfig(vendor="runflow", poll_interval_s=0.5).poll_interval_s == 0.5
    with pytest.raises(ValidationError):
        RouteConfig(vendor="runflow", poll_interval_s=0)


def test_the_local_pipeline_needs_no_region_and_no_key() -> None:
    route = RouteConfig(vendor="local")

    assert route.regions[0].name == "in-process"
    assert route.is_enabled


def test_a_local_model_dir_adds_the_in_process_route_unless_a_route_names_local(tmp_path: Path) -> None:
    """``local_model_dir`` is the short way to the in-process pipeline (the end-to-end test serves
    through an explicit local route, whose options warm only the tiny model's size)."""
    added = Settings(local_model_dir=tmp_path, local_priority=3).enabled_routes()
    explicit = RouteConfig(vendor="local", options={"model_dir": "elsewhere"})

    assert [(r.vendor, r.priority, r.options) for r in added] == [("local", 3, {"model_dir": str(tmp_path)})]
    assert Settings(local_model_dir=tmp_path, routes=[explicit]).enabled_routes() == [explicit]


def test_a_gpu_worker_needs_a_region() -> None:
    with pytest.raises(ValidationError, match="needs at least one region"):
        RouteConfig(vendor="worker")


@pytest.mark.parametrize("toml", [
    '[[routes]]\nvendor = "midjourney"\n',
    '[[routes]]\nvendor = "runflow"\npriority = -1\n',
    '[[routes]]\nvendor = "runflow"\nweight = 0\n',
    '[[routes]]\nvendor = "runflow"\nmax_attempts = 11\n',
    '[[routes]]\nvendor = "runflow"\nregions = [{ name = "eu", base_url = "ftp://eu.example" }]\n',
    '[[routes]]\nvendor = "runflow"\nregions = [{ name = "e u", base_url = "https://eu.example" }]\n',
    '[[routes]]\nvendor = "worker"\n',
    'routing_policy = "random"\n',
    'deadline_s = 0\n',
    'content_filter_action = "ignore"\n',
    '[breaker]\nfailure_threshold = 0\n',
    '[[routes]]\nvendor = "runflow"\nprority = 1\n',
    '[[routes]]\nvendor = "runflow"\nregions = [{ name = "eu", url = "https://eu.example" }]\n',
    '[retry]\nbackof_initial_s = 1\n',
    'dealine_s = 20\n',
])
def test_an_invalid_file_is_a_validation_error(toml: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)

    with pytest.raises(ValidationError):
        Settings(config=path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Settings(config=tmp_path / "nope.toml")


def test_keys_are_required_as_soon_as_one_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Settings().keys_required

    monkeypatch.setenv("BOLTGATE_API_KEYS", '{"bg-dev": {}}')
    assert Settings().keys_required
    assert not Settings(require_api_key=False).keys_required


def test_client_keys_come_as_a_list_or_with_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_API_KEYS", '["bg-a", "bg-b"]')
    listed = Settings()
    monkeypatch.setenv("BOLTGATE_API_KEYS", '{"bg-c": {"name": "team", "budget_credits": "500"}}')
    budgeted = Settings()

    assert set(listed.api_keys) == {"bg-a", "bg-b"}
    assert all(policy.budget_credits is None for policy in listed.api_keys.values())
    assert budgeted.api_keys["bg-c"].name == "team"
    assert str(budgeted.api_keys["bg-c"].budget_credits) == "500"
    assert listed.keys_required and budgeted.keys_required


@pytest.mark.parametrize(("vendor", "options"), [
    ("runflow", {"modle_path": "x"}), ("callmissed", {"response_format": "url"}), ("local", {"fuse_qvk": "true"}),
    ("worker", {"model": "x"}),
])
def test_an_option_the_vendor_does_not_take_is_refused(vendor: str, options: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match=f"unknown option '{next(iter(options))}' for {vendor}"):
        RouteConfig(vendor=vendor, options=options,  # type: ignore[arg-type]
                    regions=[RegionConfig(name="r", base_url="http://127.0.0.1:1")])


@pytest.mark.parametrize(("vendor", "options"), [
    ("runflow", {"model_path": "x"}), ("eachlabs", {"image_field": "image_url"}), ("local", {"fuse_qkv": "true"}),
    ("runflow", {"add_signature": "true"}), ("eachlabs", {"auth_scheme": "x-api-key"}),
    ("aigateway", {"auth_scheme": "bearer"}),
])
def test_the_options_a_vendor_takes_are_accepted(vendor: str, options: dict[str, str]) -> None:
    assert RouteConfig(vendor=vendor, options=options).options == options  # type: ignore[arg-type]


def test_an_auth_scheme_the_adapters_cannot_send_is_refused_with_the_settings() -> None:
    with pytest.raises(ValidationError, match="auth_scheme for eachlabs must be bearer or x-api-key, not 'basic'"):
        RouteConfig(vendor="eachlabs", options={"auth_scheme": "basic"})  # type: ignore[arg-type]


def test_a_pixel_cap_past_what_pillow_opens_is_refused_at_start() -> None:
    assert OutboundConfig(max_image_pixels=DECODER_MAX_PIXELS).max_image_pixels == DECODER_MAX_PIXELS
    with pytest.raises(ValidationError, match="max_image_pixels"):
        OutboundConfig(max_image_pixels=DECODER_MAX_PIXELS + 1)


def test_pillow_refuses_an_image_past_the_decoder_limit_whatever_the_cap() -> None:
    """Why the cap is bounded: a larger one would let through what no decode can open."""
    side = 13_400  # 179.6 megapixels, just past DECODER_MAX_PIXELS
    with pytest.raises(ImageRefused), open_bounded(png_declaring(side, side), side * side):
        pass


def test_a_job_kept_longer_than_the_ledger_remembers_its_end_is_refused_with_the_reason() -> None:
    """A job's end is counted once by markers the ledger keeps ``CLOSED_TTL_S``: a job record kept
    longer could be delivered, and its end counted, again after they are gone."""
    assert Settings(jobs={"retention_s": CLOSED_TTL_S}).jobs.retention_s == CLOSED_TTL_S
    with pytest.raises(ValidationError, match=r"jobs.retention_s=604801 is above 604800 s \(7 days\)"):
        Settings(jobs={"retention_s": CLOSED_TTL_S + 1})
