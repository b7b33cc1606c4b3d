"""The Grafana dashboard (`infra/grafana/signoff.json`) is a valid dashboard whose every query
names series Signoff exposes, with labels those series carry, and which charts every series
Signoff defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

import api.metrics
import workflows.metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "signoff.json"
SUFFIXES = {Counter: ("_total",), Histogram: ("_bucket", "_count", "_sum")}
PROMQL_WORDS = {"by", "le", "sum", "rate", "increase", "histogram_quantile", "topk"}


def defined_series() -> dict[str, tuple[str, set[str]]]:
    """Exposed sample name -> (family, its labels), for every series of both modules."""
    series: dict[str, tuple[str, set[str]]] = {}
    for module in (workflows.metrics, api.metrics):
        for metric in vars(module).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            family = metric._name  # the name without the _total a counter is exposed with
            labels = set(metric._labelnames)
            for suffix in SUFFIXES[type(metric)]:
                series[family + suffix] = (
                    family,
                    labels | ({"le"} if suffix == "_bucket" else set()),
                )
    return series


@pytest.fixture(scope="module")
def panels() -> list[dict]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    names = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert "datasource" in names
    return dashboard["panels"]


def test_every_panel_queries_prometheus_with_a_unique_id(panels: list[dict]) -> None:
    assert panels
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])


def test_each_expression_names_existing_series_and_their_labels(panels: list[dict]) -> None:
    series = defined_series()
    charted: set[str] = set()
    for panel in panels:
        for query in panel["targets"]:
            expr = query["expr"]
            names = re.findall(r"\bsignoff_[a-z_]+", expr)
            assert names, f"{panel['title']}: no Signoff series in {expr}"
            for name in names:
                assert name in series, f"{panel['title']}: {name} is not a series Signoff exposes"
                family, labels = series[name]
                charted.add(family)
                grouped = re.findall(r"by \(([^)]*)\)", expr)
                used = {label.strip() for group in grouped for label in group.split(",")}
                used |= set(re.findall(r"(\w+)\s*=~?\s*\"", expr))
                assert used - PROMQL_WORDS <= labels, (panel["title"], used - labels)
            for legend_label in re.findall(r"\{\{(\w+)\}\}", query.get("legendFormat", "")):
                assert legend_label in used, (panel["title"], legend_label)
    every_family = {family for family, _ in series.values()}
    assert charted == every_family, f"not on the dashboard: {every_family - charted}"
