"""A small lab for the airlock end to end: a developer's project granted a 一般3级 dataset of
residents (ID numbers, names, phones), two independent checkers, a steward, and a helper that
makes a finished job with chosen outbox files (ORM rows + files in the jobs' outbox layout,
so these tests do not depend on the job dispatcher)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from countylab.identifiers import id_check_char
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.storage.models import Dataset
from countylab.web.app import create_app
from tests.support import PASSWORD, build_lab, finished_job, token_for


def id_number(n: int) -> str:
    body = f"33010219{50 + n % 40:02d}0{1 + n % 9}{10 + n % 18:02d}{n % 1000:03d}"
    return body + id_check_char(body)


RESIDENTS = [
    (
        f"R{i:04d}",
        id_number(i),
        f"{'张王李赵刘陈'[i % 6]}{'伟芳娜敏静丽'[i % 6]}{'一二三四五'[i % 5]}",
        f"1380000{i:04d}",
        ["青禾村", "东岭村", "南湾村"][i % 3],
        60 + i % 30,
    )
    for i in range(1, 121)
]


def residents_csv() -> bytes:
    lines = ["resident_id,id_number,name,phone,village,age"]
    lines += [",".join(map(str, r)) for r in RESIDENTS]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class World:
    lab: Lab
    users: dict[str, int]
    project_id: int
    other_project_id: int
    dataset_id: int
    tmp: Path
    jobs: list[int] = field(default_factory=list)

    def client(self, who: str) -> TestClient:
        c = TestClient(create_app(self.lab), raise_server_exceptions=False)
        c.headers["Authorization"] = f"Bearer {token_for(self.lab, self.users[who])}"
        return c

    def make_job(
        self,
        files: dict[str, bytes],
        *,
        project: str = "main",
        datasets: tuple[str, ...] = ("residents",),
        state: str = "succeeded",
    ) -> int:
        project_id = self.project_id if project == "main" else self.other_project_id
        with self.lab.tx() as s:
            job_id = finished_job(
                s,
                self.lab,
                project_id=project_id,
                submitted_by=self.users["dev"],
                datasets=list(datasets),
                state=state,
                files=files,
            )
        self.jobs.append(job_id)
        return job_id


def build_world(tmp_path: Path, grade: str = "general_3") -> World:
    lab = build_lab(tmp_path)
    users: dict[str, int] = {}
    with lab.tx() as s:
        dept = ids.create_org(s, SYSTEM, name="县民政局", kind="department")
        firm = ids.create_org(s, SYSTEM, name="青禾康养科技有限公司", kind="enterprise")
        for name, roles, org in [
            ("dev", ["developer"], firm),
            ("dev2", ["developer"], firm),
            ("checker", ["checker"], dept),
            ("checker2", ["checker"], dept),
            ("checker3", ["checker"], dept),
            ("steward", ["steward"], dept),
            ("nobody", [], dept),
        ]:
            users[name] = ids.create_user(
                s, SYSTEM, username=name, password=PASSWORD, display_name=name, roles=roles, org_id=org.id
            ).id
        dev = ids.principal_for(s, ids.get_user(s, users["dev"]), "system")
        project = prj.create_project(s, dev, slug="elderly", title="养老需求")
        dev2 = ids.principal_for(s, ids.get_user(s, users["dev2"]), "system")
        other = prj.create_project(s, dev2, slug="other-proj", title="另一个项目")
        d = Dataset(
            name="residents",
            title="常住人口",
            org_id=dept.id,
            grade=grade,
            tags=[],
            description="",
            contact="",
            update_frequency="static",
            privacy_unit="person",
            privacy_unit_column="resident_id",
            grade_confirmed=True,
            grade_reason="",
        )
        s.add(d)
        s.flush()
        dataset_id = d.id
        prj.grant_dataset(s, SYSTEM, project.id, dataset_id)
        prj.grant_dataset(s, SYSTEM, other.id, dataset_id)
        project_id, other_id = project.id, other.id
    csv = tmp_path / "residents.csv"
    csv.write_bytes(residents_csv())
    lab.ingestion.ingest_file(SYSTEM, dataset_id, csv)
    with lab.tx() as s:  # ingestion may propose a grade: the test decides it
        ds = s.get(Dataset, dataset_id)
        assert ds is not None
        ds.grade = grade
    return World(lab, users, project_id, other_id, dataset_id, tmp_path)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One lab per test module (building one costs seconds); each test makes its own jobs."""
    w = build_world(tmp_path_factory.mktemp("airlock"))
    yield w
    w.lab.close()


@pytest.fixture
def world(shared_world: World) -> Iterator[World]:
    caps, ocr = dict(shared_world.lab.airlock.size_caps), shared_world.lab.airlock.ocr
    yield shared_world
    shared_world.lab.airlock.size_caps, shared_world.lab.airlock.ocr = caps, ocr


SAFE_TABLE = "village,residents\n青禾村,40\n东岭村,40\n南湾村,40\n".encode()


def xlsx_bytes(build: Callable[[Any], None]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    build(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def request_body(job_id: int, *names: str, submit: bool = True, **extra: Any) -> dict[str, Any]:
    files = [
        {
            "name": n if "/" in n else f"analyse/{n}",
            "description": f"{n} 说明",
            "controls": "小于10的单元格已抑制",
            **({"count_columns": ["residents"]} if n.endswith(".csv") and "count" not in extra else {}),
        }
        for n in names
    ]
    return {"job_id": job_id, "title": "测试出域", "note": "说明", "files": files, "submit": submit}
