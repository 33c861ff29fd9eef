"""Running the suite in parallel (pytest-xdist, ``scripts/test.sh``): scheduling and per-process state.

``make test`` runs the suite in several worker processes (``-n``).  This plugin, registered by
``tests/conftest.py``, makes that both safe and fast:

* **Whole modules go to one worker** (:class:`ModuleScheduling`): a module's fixtures (a demo lab,
  a browser, a served lab) are built once, not once per worker that happened to get one of its
  tests.  Tests marked ``@pytest.mark.xdist_group("name")`` form one unit across modules instead,
  run one after another on one worker.  (xdist itself tells the controller a test's group by
  renaming its node id, which pytest 9 no longer allows; the workers here write the groups to a
  file the controller named instead.)
* **The longest modules start first**: their measured seconds (``tests/durations.json``) order the
  work queue, so the run does not end on one long module that started last.  A module without a
  measurement counts as an average one; one with browser tests as long, one with ``slow`` tests as
  half as long.  Every run of
  ``scripts/test.sh`` writes this run's seconds per module to ``test-artifacts/durations.json``
  (``$COUNTYLAB_TEST_DURATIONS``); copy it over ``tests/durations.json`` when the suite has changed
  much (a stale file only makes the order less good, never a result different).
* **Per-process user state**: the CLI records the running lab and stored logins under
  ``$XDG_STATE_HOME``/``$XDG_CONFIG_HOME`` (``countylab.commands.local_state``).  Each test process
  gets its own empty folders for both, so a server started by a test on one worker is never the lab
  that a command run by a test on the other worker (or the developer's own shell) finds.

* **Tests that must not run beside any other test** are marked ``@pytest.mark.serial``: they form
  one last unit of work that starts only when every worker is idle, and the other workers stop, so
  nothing else runs meanwhile (the rest of the run is not slowed down for them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
SERIAL = "serial"  # the xdist_group of tests marked serial
#: seconds assumed for a module that has no measurement yet (browser modules: LONG, slow: SLOW)
AVERAGE, SLOW, LONG = 5.0, 30.0, 60.0


def worker_id() -> str:
    """``gw0``, ``gw1``… in an xdist worker; ``main`` in a run without ``-n``."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_configure(config: pytest.Config) -> None:
    # A worker starts with COLUMNS=80 in its environment where the controller had none; the CLI's
    # module-level rich Console then fixes its width at 80 and ignores the COLUMNS a test passes to
    # CliRunner.  Workers get back the controller's COLUMNS (or none), before any test module loads.
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["COUNTYLAB_TEST_COLUMNS"] = os.environ.get("COLUMNS", "")
    elif (columns := os.environ.get("COUNTYLAB_TEST_COLUMNS")) is not None:
        if columns:
            os.environ["COLUMNS"] = columns
        else:
            os.environ.pop("COLUMNS", None)
    config.addinivalue_line(
        "markers", "serial: must not run beside any other test (runs last, alone: tests/parallel.py)"
    )
    state = Path(tempfile.mkdtemp(prefix=f"countylab-test-{worker_id()}-"))
    config.stash[_STATE] = state
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        folder = state / variable.lower()
        folder.mkdir(mode=0o700)
        os.environ[variable] = str(folder)


_STATE = pytest.StashKey[Path]()


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in (config.stash.get(_STATE, None), getattr(config.stash.get(_GROUPS, None), "parent", None)):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Seconds per module (setup, call and teardown), gathered in the controlling process."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    spent = _spent_by_module.setdefault(_module(report.nodeid), 0.0)
    _spent_by_module[_module(report.nodeid)] = spent + report.duration


_spent_by_module: dict[str, float] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("COUNTYLAB_TEST_DURATIONS", "")
    if not out or os.environ.get("PYTEST_XDIST_WORKER") or not _spent_by_module:
        return
    ordered = dict(sorted(((m, round(s, 1)) for m, s in _spent_by_module.items()), key=lambda kv: -kv[1]))
    Path(out).write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _durations() -> dict[str, float]:
    try:
        data = json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _group_of(item: pytest.Item) -> str | None:
    if item.get_closest_marker("serial") is not None:
        return SERIAL
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller: tell each worker where to write the groups of its tests (ModuleScheduling)."""
    node.workerinput[GROUPS_KEY] = str(_groups_file(node.config))


def _groups_file(config: pytest.Config) -> Path:
    if _GROUPS not in config.stash:
        folder = Path(tempfile.mkdtemp(prefix="countylab-test-groups-"))
        config.stash[_GROUPS] = folder / "groups.json"
    return config.stash[_GROUPS]


_GROUPS = pytest.StashKey[Path]()
GROUPS_KEY = "countylab_groups_file"


def _write_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Worker: {node id: group} of the tests that have one, for the controller's scheduler."""
    path = Path(config.workerinput[GROUPS_KEY])  # type: ignore[attr-defined]
    groups = {item.nodeid: group for item in items if (group := _group_of(item)) is not None}
    tmp = path.with_name(f"{path.name}.{worker_id()}")
    tmp.write_text(json.dumps(groups), encoding="utf-8")
    os.replace(tmp, path)  # every worker collected the same tests: the same content


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker: whole modules, longest first, serial tests last (every worker sorts alike)."""
    if not hasattr(config, "workerinput"):
        return
    measured = _durations()
    first: dict[str, int] = {}
    guess: dict[str, float] = {}
    for index, item in enumerate(items):
        module = _module(item.nodeid)
        first.setdefault(module, index)
        if item.get_closest_marker("browser") is not None:
            guess[module] = LONG
        elif item.get_closest_marker("slow") is not None:
            guess[module] = max(guess.get(module, AVERAGE), SLOW)

    def cost(module: str) -> float:
        return measured.get(module, guess.get(module, AVERAGE))

    order = {m: (-cost(m), i) for m, i in first.items()}
    items.sort(key=lambda item: (item.get_closest_marker("serial") is not None, order[_module(item.nodeid)]))
    if GROUPS_KEY in config.workerinput:  # type: ignore[attr-defined]
        _write_groups(config, items)


try:  # the scheduler exists only where pytest-xdist is installed (the dev extra)
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pragma: no cover - plain pytest without the dev extra
    LoadScopeScheduling = None


if LoadScopeScheduling is not None:

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc,valid-type]
        """One unit of work per test module, or per ``xdist_group`` where a test names one; the
        ``serial`` unit runs last, on the one worker left after the others stopped."""

        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            # the workers already sorted the modules by measured time: keep that order (xdist's
            # default re-sorts the units by their number of tests, which says little about time)
            config.option.loadscopereorder = False
            self._groups_path = _groups_file(config)
            self._groups: dict[str, str] | None = None

        def schedule(self) -> None:
            if self._groups is None and self.collection_is_completed:
                # every worker wrote the file before it reported its collection
                text = self._groups_path.read_text(encoding="utf-8") if self._groups_path.exists() else "{}"
                self._groups = json.loads(text)
            super().schedule()

        def _split_scope(self, nodeid: str) -> str:
            group = (self._groups or {}).get(nodeid)
            return f"group:{group}" if group is not None else _module(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if next(iter(self.workqueue)) != f"group:{SERIAL}":
                super()._assign_work_unit(node)
                return
            # Only the serial unit is left.  A worker runs its last test only once it gets more
            # work or is told to stop, so the others are told to stop (they finish what they have
            # and exit) and this one gets the serial unit once it is the only worker left.
            others = [n for n in self.assigned_work if n is not node]
            if others:
                for other in others:
                    if not other.shutting_down:
                        other.shutdown()
                return
            super()._assign_work_unit(node)

        def remove_node(self, node: Any) -> str | None:
            crashed = super().remove_node(node)
            for remaining in list(self.assigned_work):  # the serial unit may be due now
                self._reschedule(remaining)
            return crashed

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") not in ("loadscope", "loadgroup", "loadfile"):
            return None  # an explicit --dist load / worksteal / each keeps xdist's own
        return ModuleScheduling(config, log)
