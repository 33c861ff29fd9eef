"""The cross-project differencing ledger: a crafted pair of releases is flagged to the checker
with both tables side by side."""

from __future__ import annotations

from tests.airlock_e2e.conftest import World, request_body


def _approve(world: World, rid: int) -> dict:
    for who in ("checker", "checker2"):
        resp = world.client(who).post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
        assert resp.status_code == 200, resp.text
    return resp.json()


def test_differencing_pair_is_flagged_side_by_side(world: World) -> None:
    everyone = "village,residents\n青禾村,40\n东岭村,40\n南湾村,40\n".encode()
    first = world.make_job({"all.csv": everyone}, project="other")
    body = request_body(first, "all.csv")
    body["files"][0]["filter"] = "全部常住老人"
    rid = world.client("dev2").post("/api/airlock/requests", json=body).json()["id"]
    assert _approve(world, rid)["state"] == "released"

    # another project: the same villages "excluding 低保 households" — 3 fewer in 青禾村
    minus = "village,residents\n青禾村,37\n东岭村,40\n南湾村,40\n".encode()
    second = world.make_job({"no_dibao.csv": minus})
    body = request_body(second, "no_dibao.csv")
    body["files"][0]["filter"] = "不含低保户"
    mine = world.client("dev").post("/api/airlock/requests", json=body).json()
    assert mine["state"] == "returned"  # 一般3级 and above: a differencing hit returns the request
    assert "ledger_risks" not in mine["files"][0]  # another project's table is not the developer's
    req = world.client("checker").get(f"/api/airlock/requests/{mine['id']}").json()
    risks = req["files"][0]["ledger_risks"]
    assert len(risks) == 1
    risk = risks[0]
    assert risk["earlier_project"] == "other-proj" and risk["earlier_request"] == rid
    assert risk["cells"] == [{"key": ["青禾村"], "new": 37.0, "earlier": 40.0}]
    assert [["青禾村"], 37.0, 40.0] in risk["side_by_side"] and len(risk["side_by_side"]) == 3
    ledger = [r for r in req["files"][0]["checks"] if r["check"] == "ledger"]
    assert ledger and ledger[0]["status"] == "fail"  # (below 一般3级 it is a warning: tests/attacks)
    # the checker sees the same risk on the review page
    page = world.client("checker").get(f"/api/airlock/requests/{req['id']}").json()
    assert page["files"][0]["ledger_risks"][0]["cells"] == risk["cells"]


def test_unrelated_tables_are_not_flagged(world: World) -> None:
    a = world.make_job({"ages.csv": b"age_band,residents\n60-69,50\n70+,70\n"})
    body = request_body(a, "ages.csv")
    rid = world.client("dev").post("/api/airlock/requests", json=body).json()["id"]
    req = world.client("checker").get(f"/api/airlock/requests/{rid}").json()
    assert req["files"][0]["ledger_risks"] == []
