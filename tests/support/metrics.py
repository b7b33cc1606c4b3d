"""Reading Prometheus metrics the way a scraper does: every endpoint of a deployment, parsed
with prometheus-client's own parser, summed across processes (as a dashboard's `sum()` does)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class Scrape:
    families: dict[str, str]
    """Family name -> type, for every family any endpoint exposed (with or without samples)."""
    values: Counter[Key]
    """(sample name, labels) -> value summed over the endpoints."""

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and wanted <= ls)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for (n, ls) in self.values if n == name and label in dict(ls)}


def scrape(*urls: str) -> Scrape:
    families: dict[str, str] = {}
    values: Counter[Key] = Counter()
    for url in urls:
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("text/plain"), response.headers
        for family in text_string_to_metric_families(response.text):
            families[family.name] = family.type
            for sample in family.samples:
                values[(sample.name, frozenset(sample.labels.items()))] += sample.value
    return Scrape(families=families, values=values)
