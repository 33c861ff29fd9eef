"""Pre-review channels of a job, attacked as a hostile developer with real sandboxed jobs.

Each job reads an ID number from the data and tries to get it (or digits of it) to the
developer before any checker has looked: through its file names, file sizes, log text, exit
code, CPU and memory metering, or the error the lab reports.  Every surface the developer can
read (API, pages, lists, the outbox route, the logs route) is searched for it.  What is allowed
through is the lab's own fixed vocabulary: the state and which limit stopped the job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from countylab.jobs.facts import MESSAGES, StopReason
from tests.attacks.airlock_support import (
    ID,
    READ,
    Stage,
    developer_surfaces,
    request_all,
    run_job,
    stage_fixture,
)

pytestmark = pytest.mark.usefixtures("bwrap")


@pytest.fixture(scope="session")
def bwrap() -> None:
    from countylab.sandbox import sandbox_available

    assert sandbox_available(), "these attacks need the real sandbox (bubblewrap), as CI runs them"


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    yield from stage_fixture(tmp_path_factory)


def _digits(text: str, run: int = 6) -> set[str]:
    return set(re.findall(rf"\d{{{run},}}", text))


def _assert_hidden(seen: dict[str, str], *secrets: str) -> None:
    for surface, text in seen.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} reached the developer through {surface}"


OUT = "{path: out, kind: table}, {path: done.txt, kind: text}"


# -- class 1: file names carrying IDs ------------------------------------------------------------
NAMES = READ + (
    "import os\n"
    "os.makedirs('/outbox/out', exist_ok=True)\n"
    "open(f'/outbox/out/{ID}.csv', 'w').write('a,b\\n1,2\\n')\n"
    "open(f'/outbox/{ID[::-1]}.txt', 'w').write('x')\n"  # undeclared, reversed
    "os.makedirs(f'/outbox/out/{ID[:9]}/{ID[9:]}', exist_ok=True)\n"  # split across folders
    "open(f'/outbox/out/{ID[:9]}/{ID[9:]}/t.csv', 'w').write('a\\n1\\n')\n"
)


@pytest.fixture(scope="module")
def named(stage: Stage) -> dict[str, Any]:
    job = run_job(stage, NAMES, outputs=OUT)
    assert job["state"] == "succeeded", job
    req = request_all(stage, job["id"])
    return {"job": job, "req": req, "seen": developer_surfaces(stage, job["id"], req["id"])}


@pytest.mark.parametrize(
    "surface",
    ["job", "jobs", "outbox", "new_request_page", "request", "requests", "request_page", "job_page"],
)
def test_file_names_with_ids_never_reach_the_developer(named: dict[str, Any], surface: str) -> None:
    text = named["seen"][surface]
    for secret in (ID, ID[::-1], ID[:9], ID[9:]):
        assert secret not in text, surface


def test_the_developer_sees_a_count_of_what_the_lab_took(named: dict[str, Any]) -> None:
    req = named["req"]
    assert req["files_count"] == 4 and {f["name"] for f in req["files"]} == {None}
    assert all(set(c) == {"check", "status"} for f in req["files"] for c in f["checks"])


# -- class 2: sizes carrying digits ------------------------------------------------------------
SIZES = READ + (
    "import os\n"
    "os.makedirs('/outbox/out', exist_ok=True)\n"
    "for i in range(0, 18, 6):\n"
    "    open(f'/outbox/out/part{i}.csv', 'w').write('n\\n' + '1\\n' * int(ID[i:i + 4]))\n"
)


def test_file_sizes_carrying_id_digits_are_not_shown(stage: Stage) -> None:
    job = run_job(stage, SIZES, outputs=OUT)
    assert job["state"] == "succeeded", job
    req = request_all(stage, job["id"], "main/out")
    seen = developer_surfaces(stage, job["id"], req["id"])
    sizes = {str(2 + 2 * int(ID[i : i + 4])) for i in range(0, 18, 6)}  # bytes of each file
    for surface, text in seen.items():
        found = _digits(text, 3)
        assert not (sizes & found), (surface, sizes & found)
    assert "bytes" not in seen["outbox"] and '"size"' not in seen["outbox"]


# -- class 3: log text with encoded IDs ----------------------------------------------------------
ENCODINGS = {
    "plain": "print(ID)",
    "base64": "import base64; print(base64.b64encode(ID.encode()).decode())",
    "hex": "print(ID.encode().hex())",
    "spaced": "print(' '.join(ID))",
    "stderr_reversed": "import sys; print(ID[::-1], file=sys.stderr)",
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_log_text_with_encoded_ids_is_an_output(stage: Stage, encoding: str) -> None:
    import base64

    job = run_job(stage, READ + "print('marker-start')\n" + ENCODINGS[encoding] + "\n")
    assert job["state"] == "succeeded", job
    seen = developer_surfaces(stage, job["id"])
    encoded = {
        "plain": ID,
        "base64": base64.b64encode(ID.encode()).decode(),
        "hex": ID.encode().hex(),
        "spaced": " ".join(ID),
        "stderr_reversed": ID[::-1],
    }[encoding]
    _assert_hidden(seen, encoded, "marker-start")
    logs = stage.client("dev").get(f"/api/jobs/{job['id']}/logs").json()
    assert logs["streams"] == [] and "countylab run" in logs["message"]["en"]


def test_logs_can_be_put_in_a_release_request(stage: Stage) -> None:
    job = run_job(stage, READ + "print('rows read:', len(rows))\n")
    req = request_all(stage, job["id"], "logs")
    assert req["files_count"] == 2 and [f["selector"] for f in req["files"]] == ["logs", "logs"]
    full = stage.client("checker").get(f"/api/airlock/requests/{req['id']}").json()
    assert {f["name"] for f in full["files"]} == {"main/logs/stdout.txt", "main/logs/stderr.txt"}


# -- class 4: exit codes -----------------------------------------------------------------------
@pytest.mark.parametrize("how", ["exit_digit", "exit_byte", "signal"])
def test_exit_codes_do_not_carry_data(stage: Stage, how: str) -> None:
    tail = {
        "exit_digit": "import sys; sys.exit(int(ID[6]) + 40)",
        "exit_byte": "import sys; sys.exit(int(ID[6:9]) % 256)",
        "signal": "import os, signal; os.kill(os.getpid(), [signal.SIGSEGV, signal.SIGABRT][int(ID[7]) % 2])",
    }[how]
    job = run_job(stage, READ + tail + "\n")
    assert job["state"] == "failed", job
    assert job["stopped_by"] == StopReason.exited_with_error.value
    assert job["message"] == {
        "zh": MESSAGES[StopReason.exited_with_error][0],
        "en": MESSAGES[StopReason.exited_with_error][1],
    }
    assert not {"exit_code", "error", "attempt_list", "usage"} & set(job)
    page = stage.client("dev").get(f"/jobs/{job['id']}").text
    assert 'id="exit-code"' not in page and 'id="job-error"' not in page
    steward = stage.client("steward").get(f"/api/jobs/{job['id']}").json()
    assert steward["exit_code"] not in (None, 0)  # oversight outside the project sees the record


# -- class 5: metering granularity ------------------------------------------------------------
def test_cpu_seconds_are_coarse_buckets_only(stage: Stage) -> None:
    burn = READ + "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.37: pass\n"
    job = run_job(stage, burn)
    assert job["state"] == "succeeded" and "usage" not in job
    usage = stage.client("dev").get(f"/api/projects/{stage.world.project_id}/usage").json()
    assert usage["coarse"] and usage["usage"]["cpu_s"] in (0, 60, 600, 3600, 14400, 86400)
    assert usage["usage"]["max_rss_mb"] is None and usage["usage"]["wall_s"] in (0, 60, 600, 3600)
    exact = stage.client("steward").get(f"/api/projects/{stage.world.project_id}/usage").json()
    assert not exact["coarse"] and 0 < exact["usage"]["cpu_s"] < 600


def test_memory_peaks_are_not_shown(stage: Stage) -> None:
    job = run_job(stage, READ + "blob = bytearray(int(ID[8:10]) * 1024 * 1024)\n")
    assert job["state"] == "succeeded"
    seen = developer_surfaces(stage, job["id"])
    for surface in ("job", "jobs", "job_page"):
        assert "max_rss" not in seen[surface] and 'id="max-rss"' not in seen[surface], surface


# -- class 6: the limit that stopped a job is the lab's own classification -----------------------
LIMITS = {
    # pyarrow alone needs more address space than a 128 MB job gets: these read nothing
    "memory": ("b = [b'x' * (1 << 20) for _ in range(600)]", "{cpu: 1, memory_mb: 128, time_s: 30}"),
    "time": (READ + "print(ID)\nimport time\ntime.sleep(60)", "{cpu: 1, memory_mb: 512, time_s: 3}"),
}


@pytest.mark.parametrize("reason", sorted(LIMITS))
def test_a_limit_is_named_by_the_lab(stage: Stage, reason: str) -> None:
    script, resources = LIMITS[reason]
    job = run_job(stage, script + "\n", resources=resources)
    assert job["state"] in ("killed", "failed"), job
    assert job["stopped_by"] == reason, stage.client("steward").get(f"/api/jobs/{job['id']}").json()
    assert job["message"]["en"] == MESSAGES[StopReason(reason)][1]
    _assert_hidden(developer_surfaces(stage, job["id"]), ID)
