"""The chart's monitoring: the PrometheusRule passes ``promtool check rules`` and each alert
fires (``promtool test rules``) on the series GenHub exports and only on those; every metric the
rules and the dashboard use is one genhub.common.metrics defines; each alert has a runbook
section; the ServiceMonitor scrapes every component."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from genhub.common import metrics
from tests.support.chart import CHART, NAMESPACE, ROOT, find, name, one, render

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ALERTS = {
    "GenHubBacklogGrowing",
    "GenHubDeadLetters",
    "GenHubProviderErrorRate",
    "GenHubNoConsumers",
    "GenHubWorkerRestarts",
}
# Series from kube-state-metrics, not from GenHub.
EXTERNAL = {"kube_pod_container_status_restarts_total"}
MONITORED = ("all-providers-values.yaml",)


def exported_series() -> set[str]:
    """Every sample name genhub.common.metrics can export."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                suffixes = {
                    "counter": ["_total"],
                    "histogram": ["_bucket", "_count", "_sum"],
                    "gauge": [""],
                }[family.type]
                names |= {family.name + suffix for suffix in suffixes}
    return names


def used_series(expression: str) -> set[str]:
    return set(re.findall(r"\b((?:genhub|grpc_server|http_server|kube)_[a-z_]+)\b", expression))


def rule_groups() -> list[dict[str, Any]]:
    rule = one(render(*MONITORED), "PrometheusRule", name("").rstrip("-"))
    return list(rule["spec"]["groups"])


def promtool(*args: str) -> str:
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}))
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", str(path))


def test_the_alerts_use_only_series_genhub_exports() -> None:
    rules = [r for group in rule_groups() for r in group["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    exported = exported_series()
    for rule in rules:
        used = used_series(rule["expr"])
        assert used, rule["alert"]
        assert used - EXTERNAL <= exported, f"{rule['alert']}: {used - exported}"
        assert f'namespace="{NAMESPACE}"' in rule["expr"]  # this release's series only


def test_every_alert_has_a_runbook_section() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in operations.splitlines()
        if line.startswith("#")
    }
    for group in rule_groups():
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
            assert anchor == rule["alert"].lower()
            assert anchor in headings, f"docs/operations.md has no section {rule['alert']}"


# Input series (one per minute) and the alerts they must raise at the given minute; the
# companions (dead-letter queue, steady backlog, healthy model, gateway pod) must raise none.
ns = NAMESPACE
ALERT_CASES: dict[str, tuple[list[tuple[str, str]], str, list[dict[str, str]]]] = {
    "GenHubBacklogGrowing": (
        [
            (
                f'genhub_queue_depth{{namespace="{ns}",provider="demo",queue="genhub.tasks.demo"}}',
                "0+20x45",
            ),
            (
                f'genhub_queue_depth{{namespace="{ns}",provider="demo",queue="genhub.dead.demo"}}',
                "0+50x45",
            ),
            (
                f'genhub_queue_depth{{namespace="{ns}",provider="openai",queue="genhub.tasks.openai"}}',
                "500x45",
            ),
            (
                'genhub_queue_depth{namespace="other",provider="x",queue="genhub.tasks.x"}',
                "0+20x45",
            ),
        ],
        "40m",
        [{"provider": "demo", "severity": "warning"}],
    ),
    "GenHubDeadLetters": (
        [
            (
                f'genhub_dead_letters_total{{namespace="{ns}",provider="openai",pod="p1"}}',
                "0 0 0 1 1 1",
            ),
            (
                f'genhub_dead_letters_total{{namespace="{ns}",provider="demo",pod="p2"}}',
                "0 0 0 0 0 0",
            ),
        ],
        "5m",
        [{"provider": "openai", "severity": "warning"}],
    ),
    "GenHubProviderErrorRate": (
        [
            (
                f'genhub_provider_errors_total{{namespace="{ns}",provider="openai",model="sora-2",error_class="unavailable"}}',
                "0+3x30",
            ),
            (
                f'genhub_provider_call_seconds_count{{namespace="{ns}",provider="openai",model="sora-2",call="submit"}}',
                "0+10x30",
            ),
            (
                f'genhub_provider_errors_total{{namespace="{ns}",provider="openai",model="gpt-image-1",error_class="timeout"}}',
                "0+1x30",
            ),
            (
                f'genhub_provider_call_seconds_count{{namespace="{ns}",provider="openai",model="gpt-image-1",call="generate"}}',
                "0+10x30",
            ),
        ],
        "20m",
        [{"provider": "openai", "model": "sora-2", "severity": "critical"}],
    ),
    "GenHubNoConsumers": (
        [
            (
                f'genhub_queue_consumers{{namespace="{ns}",provider="volcengine",queue="genhub.tasks.volcengine"}}',
                "0x10",
            ),
            (
                f'genhub_queue_consumers{{namespace="{ns}",provider="demo",queue="genhub.tasks.demo"}}',
                "2x10",
            ),
            (
                f'genhub_queue_consumers{{namespace="{ns}",provider="demo",queue="genhub.dead.demo"}}',
                "0x10",
            ),
        ],
        "8m",
        [{"provider": "volcengine", "queue": "genhub.tasks.volcengine", "severity": "critical"}],
    ),
    "GenHubWorkerRestarts": (
        [
            (
                f'kube_pod_container_status_restarts_total{{namespace="{ns}",pod="{name("worker-demo")}-6d9f-x2",container="worker-demo"}}',
                "0 1 2 3 4 5",
            ),
            (
                f'kube_pod_container_status_restarts_total{{namespace="{ns}",pod="{name("gateway")}-5c7b-q8",container="gateway"}}',
                "0 1 2 3 4 5",
            ),
        ],
        "5m",
        [{"namespace": ns, "pod": f"{name('worker-demo')}-6d9f-x2", "severity": "warning"}],
    ),
}


@pytest.mark.parametrize("alert", sorted(ALERT_CASES))
def test_each_alert_fires_on_its_series_only(alert: str, tmp_path: Path) -> None:
    groups = rule_groups()
    for group in groups:
        for rule in group["rules"]:
            # Annotation texts are checked by `check rules`; here only whether and for whom.
            rule.pop("annotations")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    series, at, expected = ALERT_CASES[alert]
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": alert,
                        "exp_alerts": [{"exp_labels": labels} for labels in expected],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    assert "SUCCESS" in promtool("test", "rules", str(tmp_path / "test.yml"))


def test_dashboard_uses_only_exported_series_and_ships_in_its_config_map() -> None:
    text = (CHART / "files" / "genhub-dashboard.json").read_text()
    dashboard = json.loads(text)
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 15
    used = set().union(*(used_series(e) for e in expressions))
    assert used - EXTERNAL <= exported_series(), used - exported_series()
    assert {"genhub_queue_depth", "genhub_worker_in_flight", "grpc_server_handled_total"} <= used
    config_map = one(render(*MONITORED), "ConfigMap", name("dashboard"))
    assert json.loads(config_map["data"]["genhub.json"]) == dashboard
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert find(render(), "ConfigMap", name("dashboard")) == []


def test_service_monitor_scrapes_every_component() -> None:
    objects = render(*MONITORED)
    monitor = one(objects, "ServiceMonitor", name("").rstrip("-"))
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    scraped = [
        s
        for s in find(objects, "Service")
        if all(s["metadata"]["labels"].get(k) == v for k, v in selector.items())
    ]
    assert {s["metadata"]["name"] for s in scraped} == {
        d["metadata"]["name"] for d in find(objects, "Deployment")
    }
    for service in scraped:
        assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    assert find(render(), "ServiceMonitor") == [] and find(render(), "PrometheusRule") == []
