"""The Helm chart as Kubernetes will see it: rendered by Helm's own engine (``helm-python-sdk``,
no ``helm`` binary), linted strictly, every object validated against Kubernetes' schemas
(``kubernetes-validate``, strict) for the oldest and the newest version the chart supports, and
the rendered objects checked for what an operator signs off: probes, resources, restricted
security contexts, grace periods, secrets by reference, PDBs, persistence.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (via litestar) ships no stubs

from backends.local.config import LocalBackendConfig
from backends.local.worker_cli import build_worker_parser, config_from_args
from proxy.cli import build_parser
from proxy.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "boltgate"
EXAMPLES = sorted((ROOT / "helm" / "examples").glob("*.yaml"))
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
"""Custom resources of the Prometheus Operator: Kubernetes ships no schema for them."""
_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")

Manifest = dict[str, Any]


@cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    return chart().render(values=values or {}, name="bg", namespace="images", is_install=True)


def objects(values: dict[str, Any] | None = None) -> list[Manifest]:
    found: list[Manifest] = []
    for path, text in render(values).items():
        if path.endswith(".yaml"):
            found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def example(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def find(manifests: list[Manifest], kind: str, suffix: str) -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(suffix)]
    assert len(matches) == 1, f"expected one {kind} *{suffix}, found {len(matches)}"
    return matches[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "StatefulSet"}:
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {item["name"]: item for item in container.get("env", [])}


def routes_toml(values: dict[str, Any] | None = None) -> str:
    configmap = find(objects(values), "ConfigMap", "-config")
    return str(configmap["data"]["routes.toml"])


VALUE_SETS = [pytest.param({}, id="defaults")] + [pytest.param(example(p), id=p.stem) for p in EXAMPLES]


def test_there_is_an_example_for_each_kind_of_installation() -> None:
    assert {p.stem for p in EXAMPLES} >= {"single-node", "production-ha", "vendors-only", "gpu-pool"}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_object_validates_against_kubernetes_schemas(values: dict[str, Any]) -> None:
    manifests = objects(values)
    assert manifests
    for manifest in manifests:
        if manifest["kind"] in OPERATOR_KINDS:
            assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("values", VALUE_SETS)
def test_the_chart_lints_clean_in_strict_mode(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace="images")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_kubernetes_validate_refuses_an_unknown_field() -> None:
    service = find(objects(), "Service", "-gateway")
    service["spec"]["prots"] = service["spec"].pop("ports")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("typo", [
    {"gateway": {"replicaCont": 3}},
    {"worker": {"settings": {"max_batch": 8}}},
    {"redis": {"persistance": {"enabled": True}}},
    {"state": {"backend": "postgres"}},
    {"gateway": {"deadlineSeconds": 0}},
])
def test_the_values_schema_refuses_misspelled_or_invalid_values(typo: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        chart().validate_schema(typo)
    with pytest.raises(helm.HelmError):
        render(typo)


def test_the_worker_settings_schema_is_exactly_the_worker_s_config() -> None:
    schema = chart().schema
    assert schema is not None
    settings = schema["properties"]["worker"]["properties"]["settings"]["properties"]
    assert set(settings) == set(LocalBackendConfig.model_fields)


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_pod_meets_the_restricted_pod_security_standard(values: dict[str, Any]) -> None:
    for name, spec in pod_specs(objects(values)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["readOnlyRootFilesystem"] is True, name
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume or name.endswith("-worker"), f"{name} mounts a host path"


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_container_has_probes_with_timeouts_and_sized_resources(values: dict[str, Any]) -> None:
    for name, spec in pod_specs(objects(values)):
        for container in spec["containers"]:
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], f"{name} has no memory limit"
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["timeoutSeconds"] >= 1, f"{name} {probe}"


@pytest.mark.parametrize("component", ["gateway", "worker"])
def test_probes_check_healthz_for_liveness_and_readyz_for_readiness(component: str) -> None:
    container = find(objects(), "Deployment", f"-{component}")["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_the_gateway_readiness_probe_outlasts_a_slow_readyz() -> None:
    container = find(objects(), "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["timeoutSeconds"] > 5


@pytest.mark.parametrize("values", [{}, {"gateway": {"deadlineSeconds": 120, "shutdown": {"preStopSeconds": 5}}}])
def test_a_rollout_never_cuts_a_request_short(values: dict[str, Any]) -> None:
    deployment = find(objects(values), "Deployment", "-gateway")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    deadline = float(env_of(container)["BOLTGATE_DEADLINE_S"]["value"])
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert drain >= 5
    assert spec["terminationGracePeriodSeconds"] >= drain + deadline + app_stop_s() + 5
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def app_stop_s() -> float:
    """What the gateway's own stop can take after the requests drained: the job runner's, then
    every other part's bound (``proxy.shutdown``), as the defaults wire them."""
    from proxy.jobs.runner import STOP_CLEANUP_S, STOP_MARGIN_S
    from proxy.settings import JobsConfig

    return JobsConfig().stop_grace_s + 3 * STOP_CLEANUP_S + STOP_MARGIN_S


def test_the_deadline_the_chart_sets_is_the_one_the_gateway_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = find(objects({"gateway": {"deadlineSeconds": 42}}), "Deployment", "-gateway")[
        "spec"]["template"]["spec"]["containers"][0]
    path = tmp_path / "routes.toml"
    path.write_text(routes_toml())
    monkeypatch.setenv("BOLTGATE_DEADLINE_S", env_of(container)["BOLTGATE_DEADLINE_S"]["value"])
    assert Settings(config=path).deadline_s == 42


def test_secrets_are_referenced_never_written_into_objects() -> None:
    values = example(ROOT / "helm" / "examples" / "production-ha.yaml")
    values["worker"] = {"enabled": True, "auth": {"existingSecret": "boltgate-worker-token"}}
    manifests = objects(values)
    assert not [m for m in manifests if m["kind"] == "Secret"], "the chart inlined a secret it was given"
    container = find(manifests, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    for name in ("BOLTGATE_API_KEYS", "BOLTGATE_REDIS_URL", "RUNFLOW_API_KEY", "EACHLABS_API_KEY"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
        assert "value" not in env[name], name


def test_the_bundled_redis_password_comes_from_a_secret_and_reaches_the_gateway_by_reference() -> None:
    manifests = objects()
    secret = find(manifests, "Secret", "-redis")
    assert len(secret["data"]["redis-password"]) >= 40  # 32 random characters, base64
    gateway = find(manifests, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(gateway)
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert env["BOLTGATE_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@bg-boltgate-redis:6379/0"
    redis = find(manifests, "StatefulSet", "-redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(REDIS_PASSWORD)"


def test_the_bundled_redis_keeps_its_data_on_a_volume_and_never_evicts_money() -> None:
    redis = find(objects(), "StatefulSet", "-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    assert args[args.index("--maxmemory-policy") + 1] == "volatile-ttl"
    assert args[args.index("--dir") + 1] == "/data"
    claim = redis["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    mounts = redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "data", "mountPath": "/data"} in mounts


def test_redis_memory_limits_leave_room_for_an_aof_rewrite() -> None:
    redis = find(objects({"redis": {"maxmemoryMb": 1000}}), "StatefulSet", "-redis")
    container = redis["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--maxmemory") + 1] == "1000mb"
    assert container["resources"]["limits"]["memory"] == "1628Mi"


@pytest.mark.parametrize("values", [
    {"state": {"backend": "memory"}, "gateway": {"replicaCount": 1}},
    {"redis": {"enabled": False, "external": {"url": "redis://managed:6379/0"}}},
])
def test_no_redis_is_deployed_when_the_gateway_does_not_use_the_bundled_one(values: dict[str, Any]) -> None:
    assert not [m for m in objects(values) if m["metadata"]["name"].endswith("-redis")]


def test_each_workload_has_a_disruption_budget() -> None:
    budgets = {m["metadata"]["name"]: m["spec"] for m in objects() if m["kind"] == "PodDisruptionBudget"}
    assert set(budgets) == {"bg-boltgate-gateway", "bg-boltgate-worker", "bg-boltgate-redis"}
    assert budgets["bg-boltgate-worker"]["maxUnavailable"] == 1


def test_gateway_replicas_spread_over_nodes_and_zones() -> None:
    spec = find(objects(), "Deployment", "-gateway")["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


@pytest.mark.parametrize("values", [{}, example(ROOT / "helm" / "examples" / "gpu-pool.yaml")])
def test_the_worker_arguments_parse_into_the_worker_s_own_config(values: dict[str, Any]) -> None:
    container = find(objects(values), "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["boltgate", "worker"]
    args = build_worker_parser(argparse.ArgumentParser()).parse_args(container["command"][2:] + container["args"])
    config = config_from_args(args)
    settings = values.get("worker", {}).get("settings") or chart().values["worker"]["settings"]
    assert config.max_batch_size == settings["max_batch_size"]
    assert config.preload_steps == tuple(int(s) for s in str(settings["preload_steps"]).split(","))
    assert config.compile_unet is settings["compile_unet"]
    model_dir = values.get("worker", {}).get("model", {}).get("dir")
    assert (str(config.model_dir) if config.model_dir else None) == model_dir


def test_a_gpu_pool_rolls_one_worker_at_a_time_or_surges_with_a_spare_gpu() -> None:
    default = find(objects(), "Deployment", "-worker")["spec"]["strategy"]
    assert default == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    pool = find(objects(example(ROOT / "helm" / "examples" / "gpu-pool.yaml")), "Deployment", "-worker")
    assert pool["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    env = env_of(pool["spec"]["template"]["spec"]["containers"][0])
    assert env["HF_HUB_OFFLINE"]["value"] == "1"


def test_several_workers_cannot_share_a_read_write_once_volume() -> None:
    with pytest.raises(helm.HelmError, match="ReadOnlyMany or ReadWriteMany"):
        render({"worker": {"replicaCount": 2}})


def test_an_init_container_can_fill_the_model_cache() -> None:
    values = {"worker": {"model": {"initContainer": {"enabled": True, "command": ["fetch", "/models/x"]}}}}
    spec = find(objects(values), "Deployment", "-worker")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert init["command"] == ["fetch", "/models/x"]
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]


def test_the_ingress_routes_to_the_gateway_with_tls() -> None:
    manifests = objects(example(ROOT / "helm" / "examples" / "production-ha.yaml"))
    ingress = find(manifests, "Ingress", "-gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "bg-boltgate-gateway", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["secretName"] == "boltgate-tls"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "32m"


def test_network_policies_let_only_the_gateway_reach_redis_and_the_workers() -> None:
    manifests = objects({"networkPolicy": {"enabled": True}})
    for component in ("redis", "worker"):
        policy = find(manifests, "NetworkPolicy", f"-{component}")
        sources = [rule["from"][0] for rule in policy["spec"]["ingress"]]
        assert sources[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    gateway = find(manifests, "NetworkPolicy", "-gateway")
    assert set(gateway["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_images_are_pinned_to_the_app_version_or_a_digest() -> None:
    app_version = chart().metadata["appVersion"]
    containers = {spec["containers"][0]["name"]: spec["containers"][0]["image"] for _, spec in pod_specs(objects())}
    assert containers["gateway"].endswith(f":{app_version}")
    assert containers["worker"].endswith(f":{app_version}")
    assert re.search(r":\d+\.\d+\.\d+", containers["redis"]), "the Redis tag floats"
    digest = "sha256:" + "a" * 64
    pinned = objects({"image": {"digest": digest}})
    gateway = find(pinned, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert gateway["image"] == f"ghcr.io/boltgate/boltgate@{digest}"


def test_alert_rules_ship_as_a_prometheus_rule() -> None:
    rule = find(objects({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule", "boltgate")
    alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert "BoltgateHighErrorRatio" in alerts


def test_notes_say_nothing_can_serve_without_keys_or_workers() -> None:
    notes = render({"worker": {"enabled": False}})["boltgate/templates/NOTES.txt"]
    assert "NOTHING CAN SERVE" in notes
    assert "GPU workers" not in notes


def test_the_rendered_routes_file_loads_as_gateway_settings_with_the_worker_first(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(routes_toml())
    tomllib.loads(path.read_text())
    settings = Settings(config=path)
    worker = [route for route in settings.routes if route.vendor == "worker"]
    assert len(worker) == 1
    assert worker[0].regions[0].base_url == "http://bg-boltgate-worker:9000"
    assert worker[0].priority < min(r.priority for r in settings.routes if r.vendor != "worker")


def test_every_boltgate_variable_the_chart_sets_is_a_gateway_setting() -> None:
    values = {"gateway": {"images": {"store": "directory"}, "replicaCount": 1, "publicBaseUrl": "https://x",
                          "auth": {"existingSecret": "keys"}}}
    container = find(objects(values), "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    variables = {name.removeprefix("BOLTGATE_").lower() for name in env_of(container) if name.startswith("BOLTGATE_")}
    assert {"config", "deadline_s", "state_backend", "redis_url", "image_store", "image_dir"} <= variables
    assert not variables - set(Settings.model_fields)


def test_every_value_a_template_reads_exists_in_values_yaml() -> None:
    defaults = chart().values
    missing = []
    for template in chart().templates:
        text = template["data"]
        paths = set(_VALUES_PATH.findall(text))
        for name, base in _VARIABLE.findall(text):
            paths.update(base + rest for rest in re.findall(rf"\${name}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text))
        for path in paths:
            node: Any = defaults
            for part in path.strip(".").split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(f"{template['name']}: .Values{path}")
                    break
                node = node[part]
    assert missing == []


@pytest.mark.parametrize("dockerfile", ["Dockerfile.gateway", "Dockerfile.worker"])
def test_the_images_copy_every_package_and_run_as_the_chart_s_user(dockerfile: str) -> None:
    text = (ROOT / "deploy" / "docker" / dockerfile).read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert f"COPY {package} ./{package}" in text, package
    assert "USER 10001:10001" in text
    assert chart().values["gateway"]["podSecurityContext"]["runAsUser"] == 10001
    assert re.search(r"^FROM \S+:\d[\w.\-]*$", text, re.MULTILINE), "base image tag must be pinned"


def test_the_gateway_image_has_no_torch_and_the_worker_image_can_compile() -> None:
    gateway = (ROOT / "deploy" / "docker" / "Dockerfile.gateway").read_text()
    worker = (ROOT / "deploy" / "docker" / "Dockerfile.worker").read_text()
    assert "[local]" not in gateway and "torch" not in gateway.split("\n", 3)[-1]
    assert '".[local]"' in worker
    assert re.search(r"apt-get install .*\bgcc\b.*python3-dev|python3-dev.*\bgcc\b", worker)
    assert "FROM nvidia/cuda:" in worker
    # uid 10001 has no home: every cache torch.compile and the hub write must point somewhere writable
    for variable in ("HOME", "TRITON_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "HF_HOME"):
        assert re.search(rf"\b{variable}=/tmp\b", worker), variable


def test_the_worker_and_the_gateway_share_a_token_from_a_secret() -> None:
    manifests = objects()
    secret = find(manifests, "Secret", "-worker-token")
    assert len(secret["data"]["worker-token"]) >= 50
    worker = env_of(find(manifests, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0])
    gateway = env_of(find(manifests, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0])
    token_variable = LocalBackendConfig().auth_token_env
    assert token_variable is not None
    from backends.vendors.registry import VENDOR_SPECS

    key_variable = VENDOR_SPECS["worker"].facts.key_env
    for env, name in ((worker, token_variable), (gateway, key_variable)):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "worker-token"}


def gateway_workers(values: dict[str, Any]) -> str:
    deployment = find(objects(values), "Deployment", "-gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return str(env_of(container)["BOLTGATE_WORKERS"]["value"])


@pytest.mark.parametrize(("resources", "workers"), [
    ({"requests": {"cpu": "250m"}}, "1"),
    ({"requests": {"cpu": "250m"}, "limits": {"cpu": "2"}}, "2"),
    ({"requests": {"cpu": "1"}, "limits": {"cpu": "1500m"}}, "2"),
    ({"requests": {"cpu": "3"}}, "3"),
    ({"limits": {"cpu": 4}}, "4"),
])
def test_the_gateway_runs_one_worker_per_cpu_of_its_limit(resources: dict[str, Any], workers: str) -> None:
    values = {"gateway": {"resources": {**resources, "limits": {"memory": "1Gi", **resources.get("limits", {})}}}}
    assert gateway_workers(values) == workers


def test_gateway_workers_can_be_set_and_the_memory_backend_keeps_one() -> None:
    assert gateway_workers({"gateway": {"workers": 3}}) == "3"
    assert gateway_workers({"gateway": {"workers": "auto"}}) == "auto"
    assert gateway_workers({"state": {"backend": "memory"}, "gateway": {"replicaCount": 1, "resources": {
        "limits": {"cpu": "4", "memory": "1Gi"}}}}) == "1"
    with pytest.raises(helm.HelmError, match=r"gateway\.workers above 1 needs state the processes share"):
        render({"state": {"backend": "memory"}, "gateway": {"replicaCount": 1, "workers": 2}})
    with pytest.raises(helm.HelmError):
        render({"gateway": {"workers": 0}})


def test_the_chart_workers_setting_is_one_boltgate_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOLTGATE_WORKERS", gateway_workers({"gateway": {"resources": {"limits": {"cpu": "2"}}}}))
    assert Settings().workers == 2


def test_with_client_keys_the_service_monitor_presents_the_metrics_token() -> None:
    values = {"gateway": {"auth": {"existingSecret": "keys"}},
              "metrics": {"serviceMonitor": {"enabled": True}}, "worker": {"enabled": True}}
    manifests = objects(values)
    container = find(manifests, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    token = env_of(container)["BOLTGATE_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    gateway = find(manifests, "ServiceMonitor", "-gateway")["spec"]["endpoints"][0]
    assert gateway["authorization"]["credentials"] == {"name": token["name"], "key": token["key"]}
    without_keys = objects({"metrics": {"serviceMonitor": {"enabled": True}}})
    assert "authorization" not in find(without_keys, "ServiceMonitor", "-gateway")["spec"]["endpoints"][0]


def test_the_workers_metrics_need_their_own_token_which_their_service_monitor_presents() -> None:
    manifests = objects({"metrics": {"serviceMonitor": {"enabled": True}}})
    secret = find(manifests, "Secret", "-worker-token")
    assert len(secret["data"]["metrics-token"]) >= 50
    assert secret["data"]["metrics-token"] != secret["data"]["worker-token"]
    worker = env_of(find(manifests, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0])
    variable = LocalBackendConfig().metrics_token_env
    assert variable is not None
    reference = {"name": secret["metadata"]["name"], "key": "metrics-token"}
    assert worker[variable]["valueFrom"]["secretKeyRef"] == reference
    endpoint = find(manifests, "ServiceMonitor", "-worker")["spec"]["endpoints"][0]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": reference}

    given = objects({"metrics": {"serviceMonitor": {"enabled": True}},
                     "worker": {"auth": {"existingSecret": "pool-tokens", "metricsTokenKey": "scrape"}}})
    assert not [m for m in given if m["kind"] == "Secret" and "worker" in m["metadata"]["name"]]
    endpoint = find(given, "ServiceMonitor", "-worker")["spec"]["endpoints"][0]
    assert endpoint["authorization"]["credentials"] == {"name": "pool-tokens", "key": "scrape"}

    open_metrics = objects({"metrics": {"serviceMonitor": {"enabled": True}},
                            "worker": {"auth": {"metricsTokenKey": ""}}})
    container = find(open_metrics, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0]
    assert variable not in env_of(container)
    assert "authorization" not in find(open_metrics, "ServiceMonitor", "-worker")["spec"]["endpoints"][0]
    assert set(find(open_metrics, "Secret", "-worker-token")["data"]) == {"worker-token"}
    with pytest.raises(helm.HelmError, match="metricsTokenKey must name another key"):
        render({"worker": {"auth": {"metricsTokenKey": "worker-token"}}})


SQLITE = {"state": {"backend": "sqlite"}, "gateway": {"replicaCount": 1}}


def test_the_sqlite_state_lives_on_a_kept_read_write_once_claim_the_gateway_reads_as_its_data_dir() -> None:
    manifests = objects(SQLITE)
    claim = find(manifests, "PersistentVolumeClaim", "-state")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    deployment = find(manifests, "Deployment", "-gateway")
    spec = deployment["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "state")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    container = spec["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "state")
    env = env_of(container)
    assert env["BOLTGATE_STATE_BACKEND"]["value"] == "sqlite"
    assert env["BOLTGATE_DATA_DIR"]["value"] == mount["mountPath"]
    assert env["BOLTGATE_IMAGE_DIR"]["value"].startswith(mount["mountPath"] + "/")  # writable: the root is not
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two pods on the one file
    assert not [m for m in manifests if m["metadata"]["name"].endswith("-redis")]
    assert "REDIS" not in " ".join(env)


def test_the_gateway_reads_the_sqlite_variables_the_chart_sets_as_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    container = find(objects({**SQLITE, "gateway": {"replicaCount": 1, "workers": 2}}), "Deployment", "-gateway")[
        "spec"]["template"]["spec"]["containers"][0]
    for name, item in env_of(container).items():
        if name.startswith("BOLTGATE_") and "value" in item and name != "BOLTGATE_CONFIG":
            monkeypatch.setenv(name, item["value"])
    settings = Settings()
    assert (settings.state_backend, settings.workers) == ("sqlite", 2)
    assert str(settings.data_dir) == "/var/lib/boltgate/state"
    assert str(settings.image_dir) == "/var/lib/boltgate/state/images"


def test_before_the_gateway_starts_an_init_container_restores_a_pending_backup_on_the_state_volume(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = find(objects(SQLITE), "Deployment", "-gateway")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    gateway = spec["containers"][0]
    assert init["command"] == ["boltgate", "state", "restore", "--pending"]
    args = build_parser().parse_args(init["command"][1:])  # a command the CLI takes
    assert (args.state_command, args.pending, args.source) == ("restore", True, None)
    assert (init["image"], init["securityContext"]) == (gateway["image"], gateway["securityContext"])
    state_mount = next(m for m in gateway["volumeMounts"] if m["name"] == "state")
    assert state_mount in init["volumeMounts"]
    for name, item in env_of(init).items():
        monkeypatch.setenv(name, item["value"])
    monkeypatch.delenv("BOLTGATE_CONFIG", raising=False)
    settings = Settings()
    assert (settings.state_backend, str(settings.data_dir)) == ("sqlite", state_mount["mountPath"])


@pytest.mark.parametrize("values", [
    {**SQLITE, "state": {"backend": "sqlite", "sqlite": {"restoreOnStart": False}}},
    {},  # Redis: restored from its own files
])
def test_no_restore_runs_at_start_when_turned_off_or_the_state_is_not_sqlite(values: dict[str, Any]) -> None:
    spec = find(objects(values), "Deployment", "-gateway")["spec"]["template"]["spec"]
    assert "initContainers" not in spec


@pytest.mark.parametrize("values", [
    {"state": {"backend": "sqlite"}},  # the default two replicas
    {"state": {"backend": "sqlite"}, "gateway": {"replicaCount": 3}},
    {"state": {"backend": "sqlite"}, "gateway": {"replicaCount": 1, "autoscaling": {"enabled": True}}},
])
def test_sqlite_with_more_than_one_gateway_pod_fails_the_render(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError, match=r"state\.backend=sqlite keeps the state in one SQLite file"):
        render(values)


def test_sqlite_allows_several_worker_processes_in_its_one_pod() -> None:
    assert gateway_workers({**SQLITE, "gateway": {"replicaCount": 1, "workers": 4}}) == "4"
    assert gateway_workers({**SQLITE, "gateway": {"replicaCount": 1, "resources": {
        "limits": {"cpu": "2", "memory": "1Gi"}}}}) == "2"


def test_an_existing_claim_holds_the_sqlite_state_and_the_chart_makes_none() -> None:
    values = {"state": {"backend": "sqlite", "sqlite": {"persistence": {"existingClaim": "boltgate-ledger"}}},
              "gateway": {"replicaCount": 1}}
    manifests = objects(values)
    assert [m["metadata"]["name"] for m in manifests if m["kind"] == "PersistentVolumeClaim"] == ["bg-boltgate-models"]
    spec = find(manifests, "Deployment", "-gateway")["spec"]["template"]["spec"]
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "boltgate-ledger"}} in spec["volumes"]


def test_on_redis_the_data_dir_is_a_writable_empty_dir_the_pods_next_container_keeps() -> None:
    """Where a pod writes down the voids it owes (``proxy.owed_voids``): the root file system is
    read-only, and an emptyDir outlives a container killed and restarted in the same pod."""
    spec = find(objects(), "Deployment", "-gateway")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "data")
    assert env_of(container)["BOLTGATE_DATA_DIR"]["value"] == mount["mountPath"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == "data")
