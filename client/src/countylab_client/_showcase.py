"""Client methods for dashboards (数据看板), showcase DP metrics, publication and big screens.

A mixin of :class:`countylab_client.Client`.  Results are plain dicts, as the API sends them.  A
dashboard's number that is neither open, released nor DP is refused when it is submitted
(``ValidationError`` whose ``details["number"]`` names it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ShowcaseAPI:
    _send: Callable[..., Any]  # provided by Client

    def dashboards(self) -> list[dict[str, Any]]:
        """Every dashboard with its state (draft, pending, published), version and widget count."""
        result: dict[str, Any] = self._send("GET", "/api/dashboards")
        return list(result["items"])

    def dashboard(self, dashboard_id: int) -> dict[str, Any]:
        """A dashboard, its widgets (definition and cached chart) and its latest approval record."""
        result: dict[str, Any] = self._send("GET", f"/api/dashboards/{int(dashboard_id)}")
        return result

    def create_dashboard(self, slug: str, title: str, description: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self._send(
            "POST", "/api/dashboards", body={"slug": slug, "title": title, "description": description}
        )
        return result

    def add_widget(
        self,
        dashboard_id: int,
        *,
        kind: str,
        title: str,
        source_kind: str,
        source: dict[str, Any],
        unit: str = "",
    ) -> dict[str, Any]:
        """Add a widget (bar, line, map, table, card) from one source: ``open``
        (``{"dataset_id", "group_by", "value", "aggregate", "bucket"}``), ``release``
        (``{"file_id", "label_column", "value_column"}``) or ``dp`` (``{"metric_id"}``).
        The dashboard goes back to draft."""
        body = {"kind": kind, "title": title, "unit": unit, "source_kind": source_kind, "source": source}
        result: dict[str, Any] = self._send("POST", f"/api/dashboards/{int(dashboard_id)}/widgets", body=body)
        return result

    def submit_dashboard(self, dashboard_id: int) -> dict[str, Any]:
        """Ask the security officer to publish; the approval record lists every number."""
        result: dict[str, Any] = self._send("POST", f"/api/dashboards/{int(dashboard_id)}/submit")
        return result

    def decide_dashboard(
        self, dashboard_id: int, *, approve: bool, version: int, comment: str = ""
    ) -> dict[str, Any]:
        """Security officer: approve (publish) or send back the pending ``version``."""
        result: dict[str, Any] = self._send(
            "POST",
            f"/api/dashboards/{int(dashboard_id)}/decision",
            body={"approve": approve, "version": int(version), "comment": comment},
        )
        return result

    def metrics(self) -> list[dict[str, Any]]:
        """The showcase's DP metrics: cached result with intervals, schedule, stale and why."""
        result: dict[str, Any] = self._send("GET", "/api/showcase/metrics")
        return list(result["items"])

    def showcase_metrics(self) -> list[dict[str, Any]]:
        """The same as :meth:`metrics` (its first name, kept for existing scripts)."""
        return self.metrics()

    def metric(self, metric_id: int) -> dict[str, Any]:
        """One showcase metric: SQL, ε, schedule, cached result, ``next_due_at``, stale and why."""
        result: dict[str, Any] = self._send("GET", f"/api/showcase/metrics/{int(metric_id)}")
        return result

    def create_metric(
        self, name: str, *, title: str, sql: str, epsilon: float, schedule: str = "daily"
    ) -> dict[str, Any]:
        """A new showcase metric (a DP SQL aggregate; ``schedule``: hourly, daily, weekly or manual).

        The DP gateway checks the SQL and ε when it is saved, as a refresh would, spending nothing:
        an unknown table or column, a query that is not an aggregate, an identifier column or an ε
        the grade does not allow raises ``ValidationError`` with the gateway's own message (its
        ``details["field"]`` is ``"sql"``) and nothing is stored."""
        body = {"name": name, "title": title, "sql": sql, "epsilon": float(epsilon), "schedule": schedule}
        result: dict[str, Any] = self._send("POST", "/api/showcase/metrics", body=body)
        return result

    def update_metric(self, metric_id: int, *, title: str, epsilon: float, schedule: str) -> dict[str, Any]:
        """Change a metric's title, ε and schedule (all three; the SQL stays: a new question is a
        new metric).  A new ε is checked by the gateway as :meth:`create_metric` is."""
        body = {"title": title, "epsilon": float(epsilon), "schedule": schedule}
        result: dict[str, Any] = self._send("PUT", f"/api/showcase/metrics/{int(metric_id)}", body=body)
        return result

    def refresh_metric(self, metric_id: int) -> dict[str, Any]:
        """Run the metric's DP query now, charged to the showcase budget (refused → ``stale``)."""
        result: dict[str, Any] = self._send("POST", f"/api/showcase/metrics/{int(metric_id)}/refresh")
        return result

    def public_dashboard(self, slug: str) -> dict[str, Any]:
        """A published dashboard's charts as the public page shows them (no login needed)."""
        result: dict[str, Any] = self._send("GET", f"/api/public/dashboards/{slug}")
        return result
