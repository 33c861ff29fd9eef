"""Bad outputs through the API: each is refused clearly, returned to the developer before any
checker sees it, and nothing is released."""

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
from PIL import Image

from countylab.airlock.checks.base import FileKind
from tests.airlock_e2e.conftest import RESIDENTS, SAFE_TABLE, World, request_body, xlsx_bytes
from tests.airlock_e2e.workers import ReadsText


def _submit(world: World, files: dict[str, bytes], *names: str) -> dict[str, Any]:
    job = world.make_job(files)
    resp = world.client("dev").post("/api/airlock/requests", json=request_body(job, *names))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _failed(req: dict[str, Any], check: str, world: World | None = None) -> dict[str, Any]:
    """The developer is told which rule failed — never its messages, details or positions; the
    details are for checkers and stewards (returned from their view of the request)."""
    assert req["state"] == "returned" and req["return_reason"] == "automatic_checks", req["state"]
    assert check in req["failed_rules"], req["failed_rules"]
    f = req["files"][0]
    assert f["check_status"] == "fail" and f["name"] is None
    for r in f["checks"]:
        assert set(r) == {"check", "status"}, r  # the rule's name and outcome only
    if world is None:
        return {}
    full = world.client("steward").get(f"/api/airlock/requests/{req['id']}").json()
    results = {r["check"]: r for r in full["files"][0]["checks"]}
    assert results[check]["status"] == "fail", results
    return dict(results[check])


def _nothing_reached_anyone(world: World, req: dict[str, Any]) -> None:
    fid = req["files"][0]["id"]
    checker = world.client("checker")
    assert req["id"] not in [
        r["id"] for r in checker.get("/api/airlock/requests?scope=queue").json()["items"]
    ]
    assert checker.get(f"/api/airlock/files/{fid}/preview").status_code == 409
    assert world.client("dev").get(f"/api/airlock/files/{fid}/download").status_code == 409
    assert fid not in [f["id"] for f in world.client("dev").get("/api/airlock/released").json()["items"]]


def test_planted_id_numbers_are_caught_before_any_human(world: World) -> None:
    planted = "village,residents,contact\n" + "".join(f"青禾村,40,{r[1]}\n" for r in RESIDENTS[:3])
    req = _submit(world, {"t.csv": planted.encode()}, "t.csv")
    result = _failed(req, "pii_scan", world)
    assert "110" not in str(result["details"])  # positions and counts only, never the values
    assert all(RESIDENTS[0][1] not in m for m in result["messages_zh"])
    _nothing_reached_anyone(world, req)


def test_exact_source_rows_are_caught(world: World) -> None:
    rows = "id_number,name,phone\n" + "".join(f"{r[1]},{r[2]},{r[3]}\n" for r in RESIDENTS[:5])
    req = _submit(world, {"rows.csv": rows.encode()}, "rows.csv")
    result = _failed(req, "leakage_scan", world)
    assert result["details"].get("row_matches") or "行" in "".join(result["messages_zh"]), result


def test_file_over_the_cap(world: World) -> None:
    world.lab.airlock.size_caps = {**world.lab.airlock.size_caps, FileKind.csv: 40}
    req = _submit(world, {"big.csv": SAFE_TABLE * 3}, "big.csv")
    assert _failed(req, "file_type", world)["details"]["reason"] == "too_large"


def test_disguised_binary_and_model_file(world: World) -> None:
    req = _submit(world, {"table.csv": pickle.dumps({"weights": [1, 2, 3]})}, "table.csv")
    assert _failed(req, "file_type", world)["details"]["reason"] == "model"
    _nothing_reached_anyone(world, req)
    req = _submit(world, {"fake.png": b"\x7fELF\x02\x01\x01" + b"\0" * 64}, "fake.png")
    assert _failed(req, "file_type", world)["details"]["reason"] == "content_mismatch"


def test_malformed_csv_row(world: World) -> None:
    req = _submit(world, {"bad.csv": "village,residents\n青禾村,40\n东岭村,40,extra\n".encode()}, "bad.csv")
    _failed(req, "table_format")


@pytest.mark.parametrize("kind", ["hidden_sheet", "formula"])
def test_xlsx_hidden_sheets_and_formulas(world: World, kind: str) -> None:
    def build(wb: Any) -> None:
        ws = wb.active
        ws.append(["village", "residents"])
        ws.append(["青禾村", 40])
        if kind == "formula":
            ws.append(["合计", "=SUM(B2:B2)"])
        else:
            hidden = wb.create_sheet("raw")
            hidden.append(["x"])
            hidden.sheet_state = "hidden"

    req = _submit(world, {"t.xlsx": xlsx_bytes(build)}, "t.xlsx")
    _failed(req, "table_format")


def test_image_with_id_numbers_in_its_text(world: World) -> None:
    # an OCR engine that reads the chart (a picklable one: the check worker gets it by value)
    world.lab.airlock.ocr = ReadsText(f"居民 {RESIDENTS[0][1]} 年龄 61")
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buf, format="PNG")
    req = _submit(world, {"chart.png": buf.getvalue()}, "chart.png")
    _failed(req, "images")
    _nothing_reached_anyone(world, req)


def test_png_metadata_is_stripped_in_the_release(tmp_path: Any) -> None:
    from PIL.PngImagePlugin import PngInfo

    from tests.airlock_e2e.conftest import build_world

    world = build_world(tmp_path, grade="general_1")  # automatic checks only: released at once
    try:
        world.lab.airlock.ocr = ReadsText("年份 人数")
        info = PngInfo()
        info.add_text("Comment", "/home/dev/secret.csv")
        buf = io.BytesIO()
        Image.new("RGB", (30, 30), "white").save(buf, format="PNG", pnginfo=info)
        req = _submit(world, {"chart.png": buf.getvalue()}, "chart.png")
        if req["state"] == "under_review":  # a free-form file is read by a person at every grade
            vote = {"choice": "approve"}
            req = world.client("checker").post(f"/api/airlock/requests/{req['id']}/votes", json=vote).json()
        assert req["state"] == "released", req
        got = world.client("dev").get(f"/api/airlock/files/{req['files'][0]['id']}/download")
        assert got.status_code == 200 and b"secret.csv" not in got.content
        full = world.client("steward").get(f"/api/airlock/requests/{req['id']}").json()
        assert got.headers["x-content-sha256"] != full["files"][0]["sha256"]
    finally:
        world.lab.close()
