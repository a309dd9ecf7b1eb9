"""The Helm chart, checked without ``helm``: what parses, what templates reference, what pods get.

``helm`` is not available here, so these tests read the chart as text and data: Chart.yaml and
values.yaml parse, every value a template reads exists, the routes TOML parses, every template's
actions are balanced, and the probes, GPU request, commands and environment are the ones the
gateway and worker expect.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via litestar) ships no stubs

from proxy.settings import RouteConfig, Settings

HELM = Path(__file__).resolve().parents[1] / "helm"
CHART = HELM / "boltgate"
TEMPLATES = CHART / "templates"
MANIFESTS = sorted(TEMPLATES.glob("*.yaml"))

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_OPENERS = {"if", "with", "range", "define", "block"}


@cache
def values() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def lookup(path: str) -> Any:
    """The value at a dotted path such as ``gateway.probes.readiness.path``; KeyError if absent."""
    node: Any = values()
    for part in path.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def template_sources() -> Iterator[tuple[str, str]]:
    """Every file Helm renders or includes, and the values.yaml strings passed through ``tpl``."""
    for path in sorted(TEMPLATES.iterdir()):
        yield path.name, path.read_text()
    yield "values.yaml:config.routes", lookup("config.routes")


def values_paths(text: str) -> set[str]:
    """Dotted paths under .Values read by ``text``, directly or through ``$var := .Values.x``."""
    paths = set(_VALUES_PATH.findall(text))
    for name, base in _VARIABLE.findall(text):
        paths.add(base)
        for rest in re.findall(rf"\${name}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            paths.add(base + rest)
    return paths


def block_under(text: str, key: str) -> str:
    """The lines nested under the first ``key:`` line (by indentation), as text."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == f"{key}:":
            indent = len(line) - len(line.lstrip())
            block = []
            for nested in lines[index + 1 :]:
                if nested.strip() and len(nested) - len(nested.lstrip()) <= indent:
                    break
                block.append(nested)
            return "\n".join(block)
    raise AssertionError(f"no `{key}:` in template")


def probe_path(template: str, probe: str) -> str:
    """The HTTP path a probe checks: a literal, or the value its ``.Values`` reference names."""
    match = re.search(r"path:\s*(.+)", block_under(template, probe))
    assert match, f"{probe} has no httpGet path"
    reference = _VALUES_PATH.search(match.group(1))
    return str(lookup(reference.group(1))) if reference else match.group(1).strip()


def test_chart_yaml_describes_an_application_chart() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "boltgate"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    assert chart["appVersion"]


def test_values_yaml_parses_to_a_mapping() -> None:
    assert {"image", "gateway", "worker", "redis", "state", "vendorKeys", "config", "metrics"} <= set(values())


@pytest.mark.parametrize(("source", "text"), list(template_sources()), ids=lambda item: str(item)[:40])
def test_every_value_a_template_reads_exists_in_values_yaml(source: str, text: str) -> None:
    missing = []
    for path in sorted(values_paths(text)):
        try:
            lookup(path)
        except KeyError:
            missing.append(path)
    assert not missing, f"{source} reads values that values.yaml lacks: {missing}"


def test_the_value_reference_check_sees_variables_too() -> None:
    text = '{{- $cache := .Values.worker.modelCache }}{{ $cache.pvc.size }}{{ .Values.image.tag }}'
    assert values_paths(text) == {".worker.modelCache", ".worker.modelCache.pvc.size", ".image.tag"}


@pytest.mark.parametrize(("source", "text"), list(template_sources()), ids=lambda item: str(item)[:40])
def test_template_actions_are_balanced(source: str, text: str) -> None:
    assert text.count("{{") == text.count("}}"), f"{source}: unbalanced delimiters"
    depth = 0
    for action in _ACTION.findall(text):
        if action.startswith("/*"):
            continue
        word = action.split()[0] if action.split() else ""
        if word in _OPENERS:
            depth += 1
        elif word == "end":
            depth -= 1
            assert depth >= 0, f"{source}: `end` without an opening action"
    assert depth == 0, f"{source}: {depth} block(s) never closed"


def test_every_included_template_is_defined() -> None:
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    defined = set(re.findall(r'define\s+"([^"]+)"', helpers))
    for source, text in template_sources():
        for name in re.findall(r'include\s+"([^"]+)"', text):
            assert name in defined, f"{source} includes undefined template {name}"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_declares_api_version_and_kind(manifest: Path) -> None:
    text = manifest.read_text()
    assert re.search(r"^apiVersion: \S+", text, re.MULTILINE)
    assert re.search(r"^kind: [A-Z]\w+", text, re.MULTILINE)


def test_the_chart_has_every_object_the_deployment_needs() -> None:
    kinds = {path.name: re.search(r"^kind: (\w+)", path.read_text(), re.MULTILINE) for path in MANIFESTS}
    found = {(name, match.group(1)) for name, match in kinds.items() if match}
    assert {
        ("gateway-deployment.yaml", "Deployment"), ("gateway-service.yaml", "Service"),
        ("gateway-hpa.yaml", "HorizontalPodAutoscaler"), ("gateway-pdb.yaml", "PodDisruptionBudget"),
        ("worker-deployment.yaml", "Deployment"), ("worker-service.yaml", "Service"),
        ("redis-deployment.yaml", "Deployment"), ("redis-service.yaml", "Service"),
        ("configmap.yaml", "ConfigMap"), ("servicemonitor.yaml", "ServiceMonitor"),
        ("redis-pvc.yaml", "PersistentVolumeClaim"),
    } <= found
    assert (TEMPLATES / "NOTES.txt").read_text().strip()


def test_routes_toml_in_values_parses_into_the_gateways_route_settings() -> None:
    document = tomllib.loads(lookup("config.routes"))
    routes = [RouteConfig.model_validate(route) for route in document["routes"]]
    assert {route.vendor for route in routes} == {"callmissed", "runflow", "eachlabs", "imageapi", "aigateway"}
    assert not any(key in raw for raw in document["routes"] for key in ("api_key", "key", "token", "secret"))
    provided = {key["env"] for key in lookup("vendorKeys.keys")}
    needed = {route.key_variable for route in routes}
    assert needed <= provided, f"routes read keys no Secret entry provides: {needed - provided}"


def worker_route_toml() -> str:
    """The route the ConfigMap appends for the GPU workers, with its values filled in."""
    configmap = (TEMPLATES / "configmap.yaml").read_text()
    match = re.search(r"\{\{- if \.Values\.worker\.enabled \}\}\n(.*?)\{\{- end \}\}", configmap, re.S)
    assert match, "configmap.yaml adds no worker route"
    block = match.group(1).replace(
        '{{ include "boltgate.workerUrl" . }}', f"http://release-boltgate-worker:{lookup('worker.service.port')}"
    )
    block = re.sub(r"\{\{ \.Values((?:\.\w+)+) \}\}", lambda value: str(lookup(value.group(1))), block)
    assert "{{" not in block, f"unfilled template action in the worker route: {block}"
    return textwrap.dedent(block)


def test_the_rendered_routes_file_loads_as_gateway_settings_with_the_worker_first(tmp_path: Path) -> None:
    routes_file = tmp_path / "routes.toml"
    routes_file.write_text(lookup("config.routes") + worker_route_toml())
    settings = Settings(config=routes_file)
    worker = [route for route in settings.routes if route.vendor == "worker"]
    assert len(worker) == 1 and worker[0].is_enabled, "the worker route needs no key"
    assert [(region.name, region.base_url) for region in worker[0].regions] == [
        (lookup("worker.region"), "http://release-boltgate-worker:9000")
    ]
    assert worker[0].priority < min(route.priority for route in settings.routes if route.vendor != "worker")
    assert "tpl .Values.config.routes" in (TEMPLATES / "configmap.yaml").read_text()


def test_the_worker_url_helper_names_the_worker_service_and_port() -> None:
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert re.search(r'define "boltgate.workerUrl".*?-worker:%d.*?\.Values\.worker\.service\.port', helpers, re.S)
    service = (TEMPLATES / "worker-service.yaml").read_text()
    assert 'name: {{ include "boltgate.fullname" . }}-worker' in service
    assert "port: {{ .Values.worker.service.port }}" in service


def test_every_boltgate_variable_the_chart_sets_is_a_gateway_setting() -> None:
    text = (TEMPLATES / "gateway-deployment.yaml").read_text() + (TEMPLATES / "_helpers.tpl").read_text()
    variables = set(re.findall(r"- name: BOLTGATE_(\w+)", text))
    assert {"CONFIG", "PORT", "STATE_BACKEND", "REDIS_URL"} <= variables
    unknown = {name for name in variables if name.lower() not in Settings.model_fields}
    assert not unknown, f"the gateway has no settings for BOLTGATE_{sorted(unknown)}"


@pytest.mark.parametrize("component", ["gateway", "worker"])
def test_probes_check_healthz_for_liveness_and_readyz_for_readiness(component: str) -> None:
    template = (TEMPLATES / f"{component}-deployment.yaml").read_text()
    assert probe_path(template, "livenessProbe") == "/healthz"
    assert probe_path(template, "readinessProbe") == "/readyz"
    assert probe_path(template, "startupProbe") == "/healthz"
    assert "port: http" in block_under(template, "readinessProbe")


def test_the_worker_requests_a_gpu_and_lands_on_gpu_nodes() -> None:
    template = (TEMPLATES / "worker-deployment.yaml").read_text()
    assert "toYaml .Values.worker.resources" in block_under(template, "resources")
    resources = lookup("worker.resources")
    assert resources["requests"]["nvidia.com/gpu"] == 1
    assert resources["limits"]["nvidia.com/gpu"] == 1, "extended resources need a limit equal to the request"
    assert "toYaml ." in block_under(template, "nodeSelector")
    assert "toYaml ." in block_under(template, "tolerations")
    assert lookup("worker.nodeSelector") and lookup("worker.tolerations")


@pytest.mark.parametrize("cache_type", ["pvc", "hostPath", "emptyDir"])
def test_the_model_cache_can_be_each_volume_kind(cache_type: str) -> None:
    template = (TEMPLATES / "worker-deployment.yaml").read_text()
    assert f'eq $cache.type "{cache_type}"' in template
    assert cache_type in lookup("worker.modelCache")
    assert "mountPath: {{ $cache.mountPath }}" in template


def test_commands_bind_all_interfaces_on_the_configured_ports() -> None:
    gateway = (TEMPLATES / "gateway-deployment.yaml").read_text()
    worker = (TEMPLATES / "worker-deployment.yaml").read_text()
    assert '["boltgate", "serve", "--host", "0.0.0.0", "--port", "{{ .Values.gateway.port }}"]' in gateway
    assert '["boltgate", "worker", "--host", "0.0.0.0", "--port", "{{ .Values.worker.port }}"]' in worker
    assert (lookup("gateway.port"), lookup("worker.port")) == (8000, 9000)


def test_the_gateway_environment_points_at_config_state_and_vendor_keys() -> None:
    gateway = (TEMPLATES / "gateway-deployment.yaml").read_text()
    env = block_under(gateway, "env")
    for name in ("BOLTGATE_CONFIG", "BOLTGATE_PORT", "BOLTGATE_STATE_BACKEND"):
        assert f"- name: {name}" in env
    assert 'include "boltgate.redisUrlEnv"' in env
    assert "- name: BOLTGATE_REDIS_URL" in (TEMPLATES / "_helpers.tpl").read_text()
    assert 'printf "%s/routes.toml" .Values.config.mountPath' in env
    assert lookup("config.mountPath") == "/etc/boltgate"
    assert "secretKeyRef" in env and "name: {{ $keys.existingSecret }}" in env
    assert lookup("state.backend") == "redis"


def test_the_bundled_redis_keeps_keys_and_money_in_an_append_only_file_on_a_volume() -> None:
    redis = (TEMPLATES / "redis-deployment.yaml").read_text()
    persisted = re.search(r"\{\{- if \$persistence\.enabled \}\}(.*?)\{\{- else \}\}", redis, re.S)
    assert persisted, "the Redis args have no persistence branch"
    assert re.search(r'- --appendonly\n\s+- "yes"', persisted.group(1))
    assert re.search(r"- --appendfsync\n\s+- \{\{ \$persistence\.appendfsync \| quote \}\}", persisted.group(1))
    assert re.search(r"- --dir\n\s+- /data", redis) and "mountPath: /data" in redis
    assert "persistentVolumeClaim:" in redis and "type: Recreate" in redis
    assert lookup("redis.persistence.enabled") is True
    assert lookup("redis.persistence.appendfsync") == "everysec"
    assert lookup("redis.persistence.size")
    pvc = (TEMPLATES / "redis-pvc.yaml").read_text()
    assert "helm.sh/resource-policy: keep" in pvc and "$persistence.size" in pvc
    # Money keys carry no TTL, so an eviction policy limited to keys with one never evicts them.
    assert re.search(r"- --maxmemory-policy\n\s+- volatile-ttl", redis)


def test_a_stopping_gateway_pod_finishes_its_requests_before_the_kubelet_kills_it() -> None:
    from proxy.cli import SHUTDOWN_MARGIN_S

    gateway = (TEMPLATES / "gateway-deployment.yaml").read_text()
    assert "terminationGracePeriodSeconds: {{ .Values.gateway.terminationGracePeriodSeconds }}" in gateway
    assert '["sleep", "{{ .Values.gateway.preStopSleepSeconds }}"]' in block_under(gateway, "preStop")
    deadline_s = tomllib.loads(lookup("config.routes"))["deadline_s"]
    needed = lookup("gateway.preStopSleepSeconds") + deadline_s + SHUTDOWN_MARGIN_S
    assert needed < lookup("gateway.terminationGracePeriodSeconds"), (
        f"preStop + deadline + drain = {needed}s does not fit the grace period")


def test_the_dockerfile_builds_the_chart_image_with_optional_extras() -> None:
    dockerfile = (HELM / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r'^ARG EXTRAS=""$', dockerfile, re.MULTILINE)
    assert 'pip install ".${EXTRAS:+[${EXTRAS}]}"' in dockerfile
    assert "USER 10001" in dockerfile and lookup("gateway.podSecurityContext.runAsUser") == 10001
