"""The later parts of the demo county, after its users, projects, catalog and grants exist.

Each capability that brings demo content (the operations platform's scenarios and applications,
the showcase's map, finished projects and dashboards) adds one step here, in the order they
depend on each other.  A step takes the lab, the :class:`DemoContext` and the progress printer,
and writes through the same services a user would (permission-checked and audited).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from countylab.identity.access import Principal
    from countylab.lab import Lab


@dataclass
class DemoContext:
    """What the first part of ``setup_demo`` made: user ids by username, organisation ids by
    name, project ids by slug, and the steward's principal (demo users log in as themselves)."""

    users: dict[str, int]
    orgs: dict[str, int]
    project_ids: dict[str, int]
    steward: Principal
    #: facts a step leaves for the later ones (e.g. "scenario:elderly-care" -> id)
    facts: dict[str, int] = field(default_factory=dict)


DemoStep = Callable[["Lab", DemoContext, Callable[[str], None]], None]


def demo_steps() -> list[DemoStep]:
    """The steps in order; imported here so that a plain ``countylab serve`` never loads them."""
    steps: list[DemoStep] = []
    from countylab.operations.demo import seed_scenarios

    steps.append(seed_scenarios)  # the scenario list (A): first, the applications step reads its facts
    from countylab.operations.demo_applications import seed_applications

    steps.append(seed_applications)  # applications at every approval stage (B): after the scenarios
    from countylab.operations.demo_agreements import seed_agreements

    steps.append(seed_agreements)  # the approved application's agreement, one signature given (C)
    from countylab.showcase.demo_map import seed_boundaries

    steps.append(seed_boundaries)  # the county map (E): after the operations steps, before the dashboards
    from countylab.showcase.demo import seed_stories

    steps.append(seed_stories)  # the two finished projects (D): releases, a DP statistic, stories
    from countylab.showcase.demo_dashboards import seed_dashboards

    steps.append(seed_dashboards)  # dashboards and the big screen (F): LAST, they show what the others made
    return steps
