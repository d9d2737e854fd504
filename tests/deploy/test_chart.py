"""The Helm chart over its rendered YAML: lint, Kubernetes schemas for the versions it claims,
one worker per enabled provider, values flowing into objects, probes, budgets, hardening,
secret references, KEDA on the dispatcher's own queue, grace periods and network policies."""

from __future__ import annotations

import functools
from typing import Any

import kubernetes_validate.utils
import pytest
import yaml

from genhub.common import topology
from genhub.common.server import LIVENESS_SERVICE
from genhub.dispatcher.config import DispatcherSettings
from genhub.media import MediaSettings
from tests.support.chart import (
    CHART,
    LATEST_KUBERNETES,
    VALUE_SETS,
    config,
    container,
    find,
    helm,
    name,
    one,
    render,
)

# Custom resources have no schema in kubernetes-validate; they are checked field by field below.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}
# The oldest version the chart claims (Chart.yaml kubeVersion) and the newest schemas we have.
KUBE_VERSIONS = ["1.29.0", LATEST_KUBERNETES]
# kubernetes-validate re-reads its (large) schema files for every object; read each once.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


def deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in find(objects, "Deployment")}


def workers(objects: list[dict[str, Any]]) -> set[str]:
    prefix = name("worker-")
    return {n.removeprefix(prefix) for n in deployments(objects) if n.startswith(prefix)}


# ------------------------------------------------------------- lint and schemas ----


@pytest.mark.parametrize("values", ["", *VALUE_SETS])
def test_helm_lint_strict(values: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    if values:
        args += ["-f", str(CHART / "ci" / values)]
    assert "0 chart(s) failed" in helm(*args)


def test_chart_claims_the_versions_we_validate() -> None:
    assert kubernetes_validate.utils.latest_version() == LATEST_KUBERNETES
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.29.0-0"
    with pytest.raises(AssertionError, match="incompatible with Kubernetes"):
        render(kube_version="1.28.0")


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_object_is_valid_for_each_claimed_kubernetes_version(
    values: str, kube_version: str
) -> None:
    for obj in render(values, kube_version=kube_version):
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.utils.validate(obj, kube_version, strict=True)


def test_only_known_custom_resources_are_rendered() -> None:
    kinds = {
        (o["apiVersion"], o["kind"])
        for values in VALUE_SETS
        for o in render(values)
        if "." in o["apiVersion"].split("/")[0]
        and not o["apiVersion"].startswith(
            ("apps/", "policy/", "autoscaling/", "networking.k8s.io/")
        )
    }
    assert kinds == CUSTOM_KINDS


# -------------------------------------------------------------------- workers ----


def test_one_worker_per_enabled_provider_and_none_for_disabled() -> None:
    assert workers(render()) == {"demo"}
    assert workers(render("all-providers-values.yaml")) == {"demo", "volcengine", "openai"}
    assert workers(render(sets=("providers.demo.enabled=false",))) == set()
    assert workers(render(sets=("providers.openai.enabled=true",))) == {"demo", "openai"}
    # A provider the chart has never heard of works the same way.
    assert "gemini" in workers(render(sets=("providers.gemini.enabled=true",)))


def test_replicas_concurrency_rate_resources_and_env_flow_from_values() -> None:
    objects = render("all-providers-values.yaml")
    volc = one(objects, "Deployment", name("worker-volcengine"))
    assert volc["spec"]["replicas"] == 3
    assert container(volc)["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert container(volc)["image"] == "genhub/genhub-worker-volcengine:0.1.0"
    settings = config(objects, "worker-volcengine")
    assert settings["GENHUB_PROVIDER"] == "volcengine"
    assert settings["GENHUB_CONCURRENCY"] == "8"
    assert settings["GENHUB_PROVIDER_REQUESTS_PER_MINUTE"] == "600"
    assert settings["GENHUB_PROVIDER_MAX_CONCURRENT_JOBS"] == "0"
    assert one(objects, "Deployment", name("worker-openai"))["spec"]["replicas"] == 2
    assert config(objects, "worker-openai")["GENHUB_CONCURRENCY"] == "16"
    assert config(objects, "worker-openai")["GENHUB_CALL_TIMEOUT_SECONDS"] == "600"
    assert config(objects, "worker-demo")["GENHUB_CONCURRENCY"] == "2"
    # Every setting name the chart passes is one the services read.
    known = {
        f"GENHUB_{field.upper()}"
        for settings_class in (DispatcherSettings, MediaSettings)
        for field in settings_class.model_fields
    }
    assert set(settings) - known == set()


def test_pods_point_at_the_taskstore_service_and_listen_on_their_ports() -> None:
    objects = render()
    # Clients call the headless Service: its name resolves to every ready task-store pod, and
    # the client channel balances round-robin over them (test_store_channel.py).
    store = one(objects, "Service", name("taskstore-headless"))
    assert store["spec"]["clusterIP"] == "None"
    assert store["spec"]["selector"].items() <= pod_labels(objects, "taskstore").items()
    virtual_ip = one(objects, "Service", name("taskstore"))
    assert store["spec"]["selector"] == virtual_ip["spec"]["selector"]
    address = f"{store['metadata']['name']}:{store['spec']['ports'][0]['port']}"
    for component in ("gateway", "worker-demo"):
        assert config(objects, component)["GENHUB_TASKSTORE_ADDR"] == address
    assert config(objects, "taskstore")["GENHUB_TASKSTORE_LISTEN"] == "0.0.0.0:50052"
    assert config(objects, "gateway")["GENHUB_GATEWAY_LISTEN"] == "0.0.0.0:50051"
    assert config(objects, "gateway")["GENHUB_AUTH_ENABLED"] == "true"
    assert config(objects, "worker-demo")["GENHUB_HEALTH_LISTEN"] == "0.0.0.0:50053"
    for component in ("gateway", "taskstore", "worker-demo"):
        assert config(objects, component)["GENHUB_METRICS_LISTEN"] == "0.0.0.0:9090"


# ------------------------------------------------------ probes, budgets, hardening ----


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_deployment_has_grpc_probes_on_its_health_port(values: str) -> None:
    objects = render(values)
    for deployment_name, deployment in deployments(objects).items():
        c = container(deployment)
        component = deployment_name.removeprefix(name(""))
        listen_key = {"gateway": "GATEWAY", "taskstore": "TASKSTORE"}.get(component, "HEALTH")
        health_port = int(config(objects, component)[f"GENHUB_{listen_key}_LISTEN"].split(":")[-1])
        for probe in ("startupProbe", "livenessProbe"):
            assert c[probe]["grpc"] == {"port": health_port, "service": LIVENESS_SERVICE}
        assert c["readinessProbe"]["grpc"] == {"port": health_port}  # "" = whole server
        assert health_port in {p["containerPort"] for p in c["ports"]}


def test_pdbs_cover_every_deployment_when_enabled() -> None:
    objects = render("all-providers-values.yaml")
    budgets = {p["metadata"]["name"]: p for p in find(objects, "PodDisruptionBudget")}
    assert set(budgets) == set(deployments(objects))
    for budget_name, budget in budgets.items():
        selector = one(objects, "Deployment", budget_name)["spec"]["selector"]
        assert budget["spec"]["selector"] == selector
        assert budget["spec"]["maxUnavailable"] == 1
    minimal = find(render("minimal-values.yaml"), "PodDisruptionBudget")
    # That set turns the gateway's and task-store's off.
    assert {p["metadata"]["name"] for p in minimal} == {name("worker-demo"), name("notifier")}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_pods_are_hardened(values: str) -> None:
    objects = render(values)
    pods = [d["spec"]["template"]["spec"] for d in deployments(objects).values()]
    pods += [p["spec"] for p in find(objects, "Pod")]  # the helm test pod
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 65532  # the images' USER
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    for account in find(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_worker_grace_outlasts_its_drain() -> None:
    drain_default = DispatcherSettings.model_fields["drain_grace_seconds"].default
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["workerDefaults"]["drainGraceSeconds"] == drain_default
    for values_file in VALUE_SETS:
        objects = render(values_file)
        for worker in workers(objects):
            settings = config(objects, f"worker-{worker}")
            drain = float(settings["GENHUB_DRAIN_GRACE_SECONDS"])
            # Workers apply no shutdown delay, but a grace covering both is the safe margin.
            delay = float(settings["GENHUB_SHUTDOWN_DELAY_SECONDS"])
            grace = one(objects, "Deployment", name(f"worker-{worker}"))["spec"]["template"][
                "spec"
            ]["terminationGracePeriodSeconds"]
            assert grace > drain + delay, f"{values_file}: worker-{worker}"


def test_config_checksum_rolls_pods_when_settings_change() -> None:
    def checksum(*sets: str) -> str:
        deployment = one(render(sets=sets), "Deployment", name("gateway"))
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum("logLevel=DEBUG") != checksum()
    assert checksum("gateway.env.GENHUB_REST_DOCS=false") != checksum()


# ---------------------------------------------------------------------- secrets ----


def secret_refs(deployment: dict[str, Any]) -> dict[str, tuple[str, str]]:
    refs = {}
    for item in container(deployment).get("env", []):
        ref = item["valueFrom"]["secretKeyRef"]
        refs[item["name"]] = (ref["name"], ref["key"])
    return refs


def test_connections_and_keys_come_from_existing_secrets() -> None:
    objects = render("external-secrets-values.yaml")
    gateway = secret_refs(one(objects, "Deployment", name("gateway")))
    assert gateway == {
        "GENHUB_REDIS_URL": ("redis-credentials", "url"),
        "GENHUB_SECRETS_KEYS": ("genhub-fernet", "current"),
        "GENHUB_MEDIA_S3_ACCESS_KEY_ID": ("media-bucket", "id"),
        "GENHUB_MEDIA_S3_SECRET_ACCESS_KEY": ("media-bucket", "secret"),
        "GENHUB_MEDIA_URL_KEYS": ("media-url-keys", "keys"),
        "GENHUB_API_KEY_PEPPER": ("genhub-api-key-pepper", "pepper"),
        "GENHUB_BOOTSTRAP_ADMIN_KEY": ("genhub-bootstrap", "admin-key"),
    }
    store = secret_refs(one(objects, "Deployment", name("taskstore")))
    assert store == {
        "GENHUB_MONGO_URL": ("mongodb-credentials", "uri"),
        "GENHUB_AMQP_URL": ("rabbitmq-credentials", "amqp-uri"),
        "GENHUB_REDIS_URL": ("redis-credentials", "url"),
    }
    openai = secret_refs(one(objects, "Deployment", name("worker-openai")))
    assert openai["OPENAI_API_KEY"] == ("openai-credentials", "api-key")
    assert openai["GENHUB_SECRETS_KEYS"] == ("genhub-fernet", "current")
    volcengine = secret_refs(one(objects, "Deployment", name("worker-volcengine")))
    assert volcengine["ARK_API_KEY"] == ("genhub-volcengine", "ark-api-key")
    notifier = secret_refs(one(objects, "Deployment", name("notifier")))
    assert notifier["GENHUB_WEBHOOK_SECRETS"] == ("genhub-webhook-secrets", "secrets")
    assert notifier["GENHUB_MONGO_URL"] == ("mongodb-credentials", "uri")
    assert config(objects, "notifier")["GENHUB_MEDIA_BACKEND"] == "s3"
    assert config(objects, "gateway")["GENHUB_MEDIA_S3_BUCKET"] == "genhub-media"
    assert find(objects, "Secret") == []  # the chart creates none: every URL is external
    auth = one(objects, "TriggerAuthentication", "rel-genhub-rabbitmq-management")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "rabbitmq-credentials", "key": "management-uri"}
    ]


def test_inline_urls_live_in_the_charts_secret_never_in_config_maps() -> None:
    objects = render("inline-urls-values.yaml")
    secret = one(objects, "Secret", name("connections"))
    urls = secret["stringData"]
    assert set(urls) == {
        "mongodb-url",
        "amqp-url",
        "amqp-management-url",
        "redis-url",
    }
    for ref in secret_refs(one(objects, "Deployment", name("gateway"))).values():
        if ref[0] != "genhub-secrets-key":
            assert ref[0] == name("connections") and ref[1] in urls
    text = yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
    for url in urls.values():
        assert url not in text
    assert "dev-password" not in text
    assert config(objects, "gateway")["GENHUB_AUTH_ENABLED"] == "false"
    assert "GENHUB_API_KEY_PEPPER" not in secret_refs(one(objects, "Deployment", name("gateway")))


# ------------------------------------------------------------------------- KEDA ----


def test_keda_scales_each_worker_on_the_queue_the_dispatcher_consumes() -> None:
    objects = render("keda-values.yaml")
    scaled = {o["metadata"]["name"]: o for o in find(objects, "ScaledObject")}
    assert set(scaled) == {name("worker-volcengine"), name("worker-openai")}
    for provider in ("volcengine", "openai"):
        spec = scaled[name(f"worker-{provider}")]["spec"]
        deployment = one(objects, "Deployment", name(f"worker-{provider}"))
        assert spec["scaleTargetRef"] == {"name": deployment["metadata"]["name"]}
        assert "replicas" not in deployment["spec"]  # KEDA owns the count
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["queueName"] == topology.work_queue(provider)
        assert trigger["metadata"]["protocol"] == "http"  # counts unacknowledged messages
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"]["excludeUnacknowledged"] == "false"
        assert trigger["metadata"]["vhostName"] == "genhub"
        assert trigger["authenticationRef"] == {"name": "rel-genhub-rabbitmq-management"}
    openai = scaled[name("worker-openai")]["spec"]
    assert (openai["minReplicaCount"], openai["maxReplicaCount"]) == (0, 5)
    assert openai["triggers"][0]["metadata"]["value"] == "30"
    hpas = {h["metadata"]["name"] for h in find(objects, "HorizontalPodAutoscaler")}
    assert not hpas & set(scaled), "KEDA and an HPA must not both scale a worker"
    assert one(objects, "Deployment", name("worker-demo"))["spec"]["replicas"] == 1


def test_hpas_target_their_deployments() -> None:
    objects = render(
        sets=("workerDefaults.autoscaling.enabled=true", "notifier.autoscaling.enabled=true")
    )
    hpas = find(objects, "HorizontalPodAutoscaler")
    assert {h["metadata"]["name"] for h in hpas} == set(deployments(objects))
    for hpa in hpas:
        assert hpa["spec"]["scaleTargetRef"]["name"] == hpa["metadata"]["name"]
        assert "replicas" not in one(objects, "Deployment", hpa["metadata"]["name"])["spec"]


# -------------------------------------------------------------- network policies ----


def pod_labels(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    deployment = one(objects, "Deployment", name(component))
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def admits(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = peer.get("podSelector", {}).get("matchLabels", {})
    return "namespaceSelector" not in peer and all(labels.get(k) == v for k, v in wanted.items())


def test_each_component_admits_only_its_callers() -> None:
    objects = render("network-policies-values.yaml")
    policies = {p["metadata"]["name"]: p["spec"] for p in find(objects, "NetworkPolicy")}
    assert set(policies) == set(deployments(objects))
    for policy_name, spec in policies.items():
        assert spec["podSelector"] == one(objects, "Deployment", policy_name)["spec"]["selector"]
        assert spec["policyTypes"] == ["Ingress"]
        for rule in spec["ingress"]:
            assert rule.get("from"), f"{policy_name}: a rule without `from` admits everyone"
    # task-store: only the gateway and the workers reach its gRPC port.
    (store_grpc, store_metrics) = policies[name("taskstore")]["ingress"]
    assert store_grpc["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    for caller in ("gateway", "worker-demo", "worker-openai"):
        assert any(admits(p, pod_labels(objects, caller)) for p in store_grpc["from"]), caller
    assert not any(admits(p, pod_labels(objects, "taskstore")) for p in store_grpc["from"])
    # Workers take no calls but scrapes.
    (worker_rule,) = policies[name("worker-demo")]["ingress"]
    assert worker_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert worker_rule["from"] == store_metrics["from"]
    # The gateway: its ingress controller, and the chart's own test pod.
    api = policies[name("gateway")]["ingress"][0]
    test_pod = one(objects, "Pod", name("gateway-test-health"))
    assert any(admits(p, test_pod["metadata"]["labels"]) for p in api["from"])
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in api["from"]


def test_no_network_policies_unless_enabled() -> None:
    assert find(render(), "NetworkPolicy") == []


def test_helm_test_pod_checks_the_gateways_grpc_health() -> None:
    objects = render()
    pod = one(objects, "Pod", name("gateway-test-health"))
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (c,) = pod["spec"]["containers"]
    script = c["command"][-1]
    assert f'"{name("gateway")}:50051"' in script
    assert "HealthStub" in script and "SERVING" in script
    assert c["image"] == container(one(objects, "Deployment", name("gateway")))["image"]


def test_the_media_sweep_runs_as_a_hardened_cronjob_that_task_store_admits() -> None:
    from genhub.media.__main__ import SweepSettings

    assert find(render(), "CronJob") == []  # no media store, no sweep
    objects = render("external-secrets-values.yaml", sets=("media.retentionDays=7",))
    job = one(objects, "CronJob", name("media-sweep"))
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]
    (sweep,) = pod["spec"]["containers"]
    assert sweep["command"] == ["genhub-media", "sweep"]
    assert sweep["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    env = {e["name"]: e for e in sweep["env"]}
    assert env["GENHUB_MEDIA_RETENTION_DAYS"]["value"] == "7"
    assert env["GENHUB_MEDIA_S3_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == (
        "media-bucket"
    )
    # Every setting it passes is one the sweep reads.
    known = {f"GENHUB_{field.upper()}" for field in SweepSettings.model_fields}
    assert set(env) - known == set()
    # task-store's NetworkPolicy admits its pods.
    assert pod["metadata"]["labels"]["genhub.dev/taskstore-client"] == "true"
