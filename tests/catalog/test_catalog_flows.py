"""The data middle platform end to end through the API: datasets, every ingestion path, the bad
input cases (each leaves the warehouse and catalog exactly as before), grades, previews, search."""

from __future__ import annotations

import io
import json

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from countylab.catalog import service as catalog
from countylab.identity.access import SYSTEM
from countylab.storage.catalog_models import DatasetVersion
from tests.support import api_client, audit_actions, build_lab, create_user

NAMES = ["张伟", "王芳", "李娜", "赵秀", "陈英"]
TOWNS = ["城关街道", "青禾镇"]
CSV = "resident_id,name,id_number,age,income,town\n" + "".join(
    f"R{i:04d},{NAMES[i % 5]},11010519491231002X,{20 + i % 60},{1000 * i},{TOWNS[i % 2]}\n"
    for i in range(1, 41)
)


@pytest.fixture
def world(tmp_path):
    lab = build_lab(tmp_path, upload_max_mb=1)
    provider = create_user(lab, "provider", ["provider"], org="县民政局")
    other = create_user(lab, "farmer", ["provider"], org="县农业农村局")
    steward = create_user(lab, "steward", ["steward"], org="县大数据中心", kind="platform")
    dev = create_user(lab, "dev", ["developer"], org="康养科技", kind="enterprise")
    c = api_client(lab, provider)
    ds = c.post(
        "/api/datasets",
        json={
            "name": "residents",
            "title": "常住人口信息",
            "privacy_unit": "person",
            "privacy_unit_column": "resident_id",
            "tags": ["人口", "养老"],
            "description": "民政局维护的常住人口名册",
            "key_columns": ["resident_id"],
        },
    )
    assert ds.status_code == 201, ds.text
    yield {
        "lab": lab,
        "provider": c,
        "other": api_client(lab, other),
        "steward": api_client(lab, steward),
        "dev": api_client(lab, dev),
        "id": ds.json()["id"],
    }
    lab.close()


def _upload(c, dataset_id, name, content, mode="replace", key=""):
    return c.post(
        f"/api/datasets/{dataset_id}/versions",
        files={"file": (name, content)},
        data={"mode": mode, "key": key},
    )


def _state(lab, dataset_id):
    """Everything a failed upload must leave untouched: catalog rows and warehouse files."""
    with lab.tx() as s:
        versions = [(v.version, v.row_count) for v in catalog.versions(s, dataset_id)]
        ds = catalog.get_dataset(s, dataset_id)
        head = (ds.current_version, ds.row_count, json.dumps(ds.table_schema, sort_keys=True))
    root = lab.settings.warehouse_dir
    files = (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".staging" not in p.parts)
        if root.exists()
        else []
    )
    return versions, head, files


def test_every_file_format_commits_one_version(world, tmp_path):
    c, did = world["provider"], world["id"]
    r = _upload(c, did, "人口.csv", CSV.encode("utf-8"))
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["row_count"] == 40
    assert _upload(c, did, "bom.csv", b"\xef\xbb\xbf" + CSV.encode("utf-8")).json()["version"] == 2
    assert _upload(c, did, "gbk.csv", CSV.encode("gbk")).json()["row_count"] == 40
    wb = Workbook()
    sheet = wb.active
    for line in CSV.strip().split("\n"):
        sheet.append(line.split(","))
    buf = io.BytesIO()
    wb.save(buf)
    assert _upload(c, did, "人口.xlsx", buf.getvalue()).status_code == 201
    lines = [
        dict(zip(CSV.split("\n")[0].split(","), row.split(","), strict=True))
        for row in CSV.strip().split("\n")[1:]
    ]
    jsonl = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines).encode()
    assert _upload(c, did, "people.jsonl", jsonl).status_code == 201
    detail = c.get(f"/api/datasets/{did}").json()
    assert [v["version"] for v in detail["versions"]] == [5, 4, 3, 2, 1]
    assert {col["name"]: col["type"] for col in detail["columns"]}["age"] == "int64"
    # PII found per column; the matched values are never in any answer
    pii = {col["name"]: col["pii"]["kind"] for col in detail["columns"] if col["pii"]}
    assert pii == {"name": "person_name", "id_number": "id_number"}
    assert "11010519491231002X" not in json.dumps(detail, ensure_ascii=False)
    assert detail["grade"] == "general_4" and "id_number" in detail["grade_reason"]
    # a Parquet upload works too
    table = pq.read_table(world["lab"].warehouse.files("residents", 1)[0])
    out = io.BytesIO()
    pq.write_table(table, out)
    assert _upload(c, did, "p.parquet", out.getvalue()).json()["version"] == 6


@pytest.mark.parametrize(
    ("name", "content", "status", "reason"),
    [
        ("ragged.csv", (CSV + "R9999,多余,11010519491231002X,30,1,镇,多一列\n").encode(), 422, None),
        ("types.csv", CSV.replace(",25,", ",二十五,").encode(), 422, None),
        ("changed.csv", b"resident_id,name\nR1,x\n", 422, "schema_change"),
        ("empty.csv", b"", 422, "empty"),
        ("header-only.csv", CSV.split("\n")[0].encode() + b"\n", 422, None),
        ("../../etc/passwd.csv", CSV.encode(), 422, None),
        ("bin.csv", b"\x00\x01\x02" * 1000, 422, None),
        ("utf16.csv", CSV.encode("utf-16"), 422, None),
        ("huge.csv", b"a" * (2 << 20), 413, "too_large"),
    ],
)
def test_bad_uploads_leave_no_trace(world, name, content, status, reason):
    c, did, lab = world["provider"], world["id"], world["lab"]
    assert _upload(c, did, "ok.csv", CSV.encode()).status_code == 201
    before = _state(lab, did)
    r = _upload(c, did, name, content)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and "Traceback" not in r.text
    if reason:
        assert err["details"].get("reason") == reason
    if name == "types.csv":
        assert err["details"]["column"] == "age" and err["details"]["row"] == 5
    if name == "ragged.csv":
        assert "row" in err["details"]
    assert _state(lab, did) == before
    assert not list((lab.settings.data_dir / "uploads").iterdir())


def test_modes_append_upsert_duplicate_keys_and_as_of(world):
    c, did, lab = world["provider"], world["id"], world["lab"]
    assert _upload(c, did, "v1.csv", CSV.encode()).status_code == 201
    head, rows = CSV.split("\n")[0], CSV.strip().split("\n")[1:]
    extra = head + "\nR9001,新人,11010519491231002X,33,5000,青禾镇\n"
    assert _upload(c, did, "v2.csv", extra.encode(), mode="append").json()["row_count"] == 41
    changed = (
        head + "\n" + rows[0].replace(",21,", ",99,") + "\nR9002,又一人,11010519491231002X,40,1,青禾镇\n"
    )
    assert (
        _upload(c, did, "v3.csv", changed.encode(), mode="upsert", key="resident_id").json()["row_count"]
        == 42
    )
    dup = head + "\n" + rows[0] + "\n" + rows[0] + "\n"
    before = _state(lab, did)
    r = _upload(c, did, "dup.csv", dup.encode(), mode="upsert", key="resident_id")
    assert r.status_code == 422 and r.json()["error"]["details"]["rows"]
    assert _state(lab, did) == before

    def count(version):
        with lab.tx() as s:
            ds = catalog.get_dataset(s, did)
        paths = [str(p) for p in lab.ingestion.read_paths(ds, version)]
        return (
            duckdb.connect()
            .execute(f"SELECT COUNT(*), MAX(age) FILTER (resident_id = 'R0001') FROM read_parquet({paths})")
            .fetchone()
        )

    assert count(1) == (40, 21) and count(2) == (41, 21) and count(3) == (42, 99)


def test_push_json_and_arrow_idempotent_visible_and_compacted(world):
    c, did, lab = world["provider"], world["id"], world["lab"]
    assert (
        c.post(f"/api/datasets/{did}/rows", json={"rows": [{"resident_id": "R1"}]}).json()["error"][
            "details"
        ]["reason"]
        == "no_schema"
    )
    assert _upload(c, did, "v1.csv", CSV.encode()).status_code == 201
    row = {
        "resident_id": "R5000",
        "name": "推送",
        "id_number": "11010519491231002X",
        "age": 70,
        "income": 1,
        "town": "青禾镇",
    }
    r1 = c.post(f"/api/datasets/{did}/rows", json={"rows": [row], "idempotency_key": "batch-1"})
    assert r1.json() == {"accepted": 1, "duplicate": False}
    again = c.post(f"/api/datasets/{did}/rows", json={"rows": [row], "idempotency_key": "batch-1"})
    assert again.json() == {"accepted": 0, "duplicate": True}
    table = pa.table({k: [v] for k, v in {**row, "resident_id": "R5001"}.items()})
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    r2 = c.post(
        f"/api/datasets/{did}/rows",
        content=sink.getvalue(),
        headers={"content-type": "application/vnd.apache.arrow.stream", "Idempotency-Key": "arrow-1"},
    )
    assert r2.json()["accepted"] == 1, r2.text
    bad = c.post(f"/api/datasets/{did}/rows", json={"rows": [{**row, "age": "old"}], "idempotency_key": "b2"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["column"] == "age"
    with lab.tx() as s:
        ds = catalog.get_dataset(s, did)
    paths = [str(p) for p in lab.ingestion.read_paths(ds)]
    assert (
        duckdb.connect().execute(f"SELECT COUNT(*) FROM read_parquet({paths})").fetchone()[0] == 42
    )  # visible at once
    assert c.post(f"/api/datasets/{did}/compact").json()["version"] == 2
    detail = c.get(f"/api/datasets/{did}").json()
    assert detail["row_count"] == 42 and detail["versions"][0]["mode"] == "compaction"
    assert lab.warehouse.pending_stream("residents") == []
    # a retried batch after compaction is still applied only once
    assert c.post(f"/api/datasets/{did}/rows", json={"rows": [row], "idempotency_key": "batch-1"}).json()[
        "duplicate"
    ]
    assert world["other"].post(f"/api/datasets/{did}/rows", json={"rows": [row]}).status_code == 403


def test_only_the_owning_department_writes(world):
    did = world["id"]
    assert _upload(world["other"], did, "x.csv", CSV.encode()).status_code == 403
    assert world["dev"].post("/api/datasets", json={"name": "mine", "title": "x"}).status_code == 403
    assert world["other"].patch(f"/api/datasets/{did}", json={"title": "改名"}).status_code == 403
    assert (
        world["provider"].patch(f"/api/datasets/{did}", json={"title": "常住人口"}).json()["title"]
        == "常住人口"
    )
    denied = [a for a in audit_actions(world["lab"]) if a[0] == "permission.denied"]
    assert len(denied) == 3


def test_grades_confirm_raise_and_lower_only_with_reason(world):
    did, steward = world["id"], world["steward"]
    assert _upload(world["provider"], did, "v1.csv", CSV.encode()).status_code == 201
    assert world["provider"].put(f"/api/datasets/{did}/grade", json={"grade": "general_1"}).status_code == 403
    assert steward.put(f"/api/datasets/{did}/grade", json={"grade": "general_4"}).json()["grade_confirmed"]
    assert (
        steward.put(f"/api/datasets/{did}/grade", json={"grade": "important"}).json()["grade"] == "important"
    )
    lowered = steward.put(f"/api/datasets/{did}/grade", json={"grade": "general_3"})
    assert lowered.status_code == 422
    ok = steward.put(
        f"/api/datasets/{did}/grade", json={"grade": "general_3", "reason": "已脱敏处理，经安全委员会审议"}
    )
    assert ok.json()["grade"] == "general_3"
    kinds = [h["kind"] for h in steward.get(f"/api/datasets/{did}/grade-history").json()["items"]]
    assert kinds[:3] == ["lowered", "raised", "confirmed"]
    assert any(a[0] == "dataset.grade.lowered" for a in audit_actions(world["lab"]))
    # new data as sensitive as before leaves the officer's decision standing
    assert _upload(world["provider"], did, "v2.csv", CSV.encode()).status_code == 201
    assert world["dev"].get(f"/api/datasets/{did}").json()["grade"] == "general_3"


def test_more_sensitive_data_raises_a_confirmed_grade(world):
    c, steward = world["provider"], world["steward"]
    did = c.post("/api/datasets", json={"name": "stats", "title": "统计表"}).json()["id"]
    assert _upload(c, did, "a.csv", "town,count\n青禾镇,3\n城关街道,5\n".encode()).status_code == 201
    assert steward.put(f"/api/datasets/{did}/grade", json={"grade": "general_1"}).status_code == 200
    # the department starts sending ID numbers in a column that used to hold counts
    leaked = "town,count\n" + "".join("青禾镇,11010519491231002X\n" for _ in range(20))
    assert _upload(c, did, "b.csv", leaked.encode()).status_code == 422  # schema: count is int64
    d2 = c.post("/api/datasets", json={"name": "stats2", "title": "统计表2"}).json()["id"]
    assert _upload(c, d2, "a.csv", "town,note\n青禾镇,无\n城关街道,无\n".encode()).status_code == 201
    assert steward.put(f"/api/datasets/{d2}/grade", json={"grade": "general_1"}).status_code == 200
    assert _upload(c, d2, "b.csv", leaked.replace("town,count", "town,note").encode()).status_code == 201
    after = c.get(f"/api/datasets/{d2}").json()
    assert after["grade"] == "general_4" and after["proposed_grade"] == "general_4"
    kinds = [h["kind"] for h in steward.get(f"/api/datasets/{d2}/grade-history").json()["items"]]
    assert kinds[0] == "raised"


def test_preview_real_rows_only_for_open_data(world):
    lab = world["lab"]
    did = world["id"]
    assert _upload(world["provider"], did, "v1.csv", CSV.encode()).status_code == 201
    p = world["dev"].get(f"/api/datasets/{did}/preview").json()
    assert p["dummy"] is True and "模拟数据" in p["label"]
    real_names = {line.split(",")[1] for line in CSV.strip().split("\n")[1:]}
    assert not real_names & {str(v) for row in p["rows"] for v in row}
    dummy = world["dev"].get(f"/api/datasets/{did}/dummy?rows=50&format=csv")
    assert dummy.status_code == 200 and dummy.text.count("\n") == 51
    # open data: after the steward confirms 一般1级, real rows are shown
    c = world["provider"]
    town = c.post("/api/datasets", json={"name": "towns", "title": "乡镇名录"}).json()["id"]
    assert _upload(c, town, "towns.csv", "code,name\n1,青禾镇\n2,城关街道\n".encode()).status_code == 201
    assert world["dev"].get(f"/api/datasets/{town}/preview").json()["dummy"] is True  # not yet confirmed
    assert world["steward"].put(f"/api/datasets/{town}/grade", json={"grade": "general_1"}).status_code == 200
    p = world["dev"].get(f"/api/datasets/{town}/preview").json()
    assert p["dummy"] is False and ["1", "青禾镇"] in [[str(v) for v in r] for r in p["rows"]]
    del lab


def test_chinese_search_and_filters(world):
    c = world["provider"]
    c.post("/api/datasets", json={"name": "care", "title": "居家养老服务记录", "tags": ["养老", "民生"]})
    c.post("/api/datasets", json={"name": "farm", "title": "耕地地块种植信息", "tags": ["农业"]})
    names = lambda r: [d["name"] for d in r.json()["items"]]  # noqa: E731
    assert names(c.get("/api/datasets", params={"q": "养老"})) == ["care", "residents"]
    assert names(c.get("/api/datasets", params={"q": "养老服务"})) == ["care"]
    assert names(c.get("/api/datasets", params={"q": "地块"})) == ["farm"]
    assert names(c.get("/api/datasets", params={"q": "人口 名册"})) == ["residents"]
    assert names(c.get("/api/datasets", params={"tag": "农业"})) == ["farm"]
    assert names(c.get("/api/datasets", params={"grade": "general_4"})) == ["residents"]
    assert names(c.get("/api/datasets", params={"q": "不存在的词"})) == []


def test_crash_mid_commit_leaves_previous_version_and_no_orphans(world, tmp_path):
    """Kill the ingesting process after the warehouse version is written but before the catalog
    row exists; on restart the dataset shows the previous version and no files linger."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    lab, did = world["lab"], world["id"]
    assert _upload(world["provider"], did, "v1.csv", CSV.encode()).status_code == 201
    before = _state(lab, did)
    big = tmp_path / "big.csv"
    big.write_text(CSV + "".join(f"R{i},某人,11010519491231002X,30,1,青禾镇\n" for i in range(100, 200_000)))
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from countylab.config import Settings
        from countylab.lab import Lab
        from countylab.identity.access import SYSTEM
        import countylab.catalog.ingestion as ing
        real = ing.Ingestion._record
        def crash(self, *a, **k):
            print("VERSION-WRITTEN", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        ing.Ingestion._record = crash
        lab = Lab(Settings(data_dir=Path({str(lab.settings.data_dir)!r})))
        lab.ingestion.ingest_file(SYSTEM, {did}, Path({str(big)!r}), mode="append")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env={**os.environ}
    )
    assert proc.returncode == -signal.SIGKILL and "VERSION-WRITTEN" in proc.stdout, proc.stderr
    assert (lab.settings.warehouse_dir / "residents" / "v2").exists()  # the orphan the crash left
    assert lab.recover(grace_s=3600) == 0  # too fresh: could be another process's commit
    assert lab.recover(grace_s=0) >= 1
    assert _state(lab, did) == before
    with lab.tx() as s:
        assert s.query(DatasetVersion).count() == 1


def test_group_commit_is_exactly_once_across_a_crash(world):
    """A crash after the keys committed but before the file was published: recovery publishes it;
    a crash before the commit: recovery drops the file, and the client's retry applies it once."""
    import pyarrow.parquet as pq

    from countylab.catalog import push_commit

    lab, did = world["lab"], world["id"]
    assert _upload(world["provider"], did, "v1.csv", CSV.encode()).status_code == 201
    row = {
        "resident_id": "R7000",
        "name": "组提交",
        "id_number": "11010519491231002X",
        "age": 60,
        "income": 1,
        "town": "青禾镇",
    }
    original = push_commit.os.rename
    calls = {"n": 0}

    def crash_on_publish(src, dst):
        if not str(dst).rsplit("/", 1)[-1].startswith("g-"):  # not the publication (the claim, say)
            return original(src, dst)
        calls["n"] += 1
        raise KeyboardInterrupt("simulated crash between commit and publish")

    push_commit.os.rename = crash_on_publish
    try:
        with pytest.raises(KeyboardInterrupt):
            lab.ingestion.push(SYSTEM, did, [row], "crash-after-commit")
    finally:
        push_commit.os.rename = original
    stream = lab.warehouse.stream_dir("residents")
    assert calls["n"] == 1 and not list(stream.glob("g-*.parquet"))
    # the crash above removed the hidden file on its way out; recreate what a hard kill leaves
    hidden = stream / ".g-00000000000000000001-deadbeef.parquet"
    table = pq.read_table(lab.warehouse.files("residents", 1)[0]).slice(0, 1)
    meta = {**(table.schema.metadata or {}), push_commit.KEYS_META: b'["crash-after-commit"]'}
    pq.write_table(table.replace_schema_metadata(meta), hidden)
    orphan = stream / ".g-00000000000000000002-cafebabe.parquet"
    meta2 = {**(table.schema.metadata or {}), push_commit.KEYS_META: b'["never-committed"]'}
    pq.write_table(table.replace_schema_metadata(meta2), orphan)
    lab.recover(grace_s=0)
    assert (stream / hidden.name[1:]).exists() and not orphan.exists()
    assert lab.ingestion.push(SYSTEM, did, [row], "crash-after-commit") == (False, 0)  # retry: once
    assert lab.ingestion.push(SYSTEM, did, [row], "never-committed") == (True, 1)  # retry: applied


def test_concurrent_pushes_share_commits_and_each_is_applied_once(world):
    from concurrent.futures import ThreadPoolExecutor

    lab, did = world["lab"], world["id"]
    assert _upload(world["provider"], did, "v1.csv", CSV.encode()).status_code == 201
    row = {
        "resident_id": "R8000",
        "name": "并发",
        "id_number": "11010519491231002X",
        "age": 50,
        "income": 1,
        "town": "青禾镇",
    }
    keys = [f"k{i % 30}" for i in range(60)]  # every key sent twice, concurrently
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: lab.ingestion.push(SYSTEM, did, [row] * 10, k), keys))
    assert sum(1 for applied, _ in results if applied) == 30
    with lab.tx() as s:
        ds = catalog.get_dataset(s, did)
    paths = [str(p) for p in lab.ingestion.read_paths(ds)]
    assert duckdb.connect().execute(f"SELECT COUNT(*) FROM read_parquet({paths})").fetchone()[0] == 40 + 300
    assert len(lab.warehouse.pending_stream("residents")) < 30  # pushes shared files
