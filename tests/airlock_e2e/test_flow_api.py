"""The release request end to end through the API: draft → submitted → checks → two blind
checker votes → released with SHA-256 → download; and every refusal on the way."""

from __future__ import annotations

import hashlib

from tests.airlock_e2e.conftest import SAFE_TABLE, World, request_body
from tests.support import audit_actions


def test_two_checkers_release_and_developer_downloads(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE, "metrics.json": b'{"rmse": 1.5}'})
    dev = world.client("dev")
    resp = dev.post("/api/airlock/requests", json=request_body(job, "by_village.csv", "metrics.json"))
    assert resp.status_code == 201, resp.text
    req = resp.json()
    assert req["state"] == "under_review", req
    assert req["grade"] == "general_3" and req["checkers_needed"] == 2
    assert all(f["check_status"] in ("pass", "warn") for f in req["files"]), req["files"]
    # before release the developer sees a count and their own selectors, never names or sizes
    assert req["files_count"] == 2 and not req["details"]
    assert [(f["name"], f["selector"]) for f in req["files"]] == [
        (None, "analyse/by_village.csv"),
        (None, "analyse/metrics.json"),
    ]
    assert not {"bytes", "sha256"} & set(req["files"][0])
    rid = req["id"]

    # the developer cannot download before release
    fid = req["files"][0]["id"]
    assert dev.get(f"/api/airlock/files/{fid}/download").status_code == 409
    # checker 1 votes; checker 2 cannot see how before voting
    c1, c2 = world.client("checker"), world.client("checker2")
    assert rid in [r["id"] for r in c1.get("/api/airlock/requests?scope=queue").json()["items"]]
    preview = c1.get(f"/api/airlock/files/{fid}/preview")
    assert preview.status_code == 200 and preview.content == SAFE_TABLE
    r1 = c1.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    assert r1.status_code == 200, r1.text
    assert r1.json()["state"] == "under_review"
    seen = c2.get(f"/api/airlock/requests/{rid}").json()["votes"]
    assert seen == [{"hidden": True, "role": "checker", "voter": None, "choice": None, "comment": None}]
    r2 = c2.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    assert r2.status_code == 200 and r2.json()["state"] == "released", r2.text
    # a third vote is refused
    r3 = world.client("checker3").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    assert r3.status_code == 409

    released = [f for f in dev.get("/api/airlock/released").json()["items"] if f["request"]["id"] == rid]
    assert {f["name"] for f in released} == {"analyse/by_village.csv", "analyse/metrics.json"}
    got = dev.get(f"/api/airlock/files/{fid}/download")
    assert got.status_code == 200 and got.content == SAFE_TABLE
    assert got.headers["x-content-sha256"] == hashlib.sha256(SAFE_TABLE).hexdigest()
    actions = [a for a, _, _ in audit_actions(world.lab)]
    for needed in (
        "release.create",
        "release.submit",
        "release.checks",
        "release.preview",
        "release.vote",
        "release.view",
        "release.approved",
        "release.released",
        "release.download",
    ):
        assert needed in actions, needed


def test_files_are_copied_at_request_time(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    dev = world.client("dev")
    req = dev.post("/api/airlock/requests", json=request_body(job, "by_village.csv", submit=False)).json()
    outbox = next((world.lab.settings.data_dir / "jobs" / "outbox").rglob("by_village.csv"))
    outbox.write_bytes("village,residents\n青禾村,1\n".encode())  # the job's outbox changes afterwards
    steward_view = world.client("steward").get(f"/api/airlock/requests/{req['id']}").json()
    assert steward_view["files"][0]["sha256"] == hashlib.sha256(SAFE_TABLE).hexdigest()
    assert "sha256" not in req["files"][0]  # the developer never sees a hash of unreleased content
    sub = dev.post(f"/api/airlock/requests/{req['id']}/submit").json()
    assert sub["state"] == "under_review", sub  # the reviewed copy is still the safe table


def test_no_self_review_and_member_checker(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    rid = (
        world.client("dev")
        .post("/api/airlock/requests", json=request_body(job, "by_village.csv"))
        .json()["id"]
    )
    # a checker who is a member of the project is not independent
    with world.lab.tx() as s:
        from countylab.identity import projects as prj
        from countylab.identity import service as ids
        from countylab.identity.access import SYSTEM
        from tests.support import PASSWORD

        owner = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "system")
        inside = ids.create_user(
            s,
            SYSTEM,
            username="checker_inside",
            password=PASSWORD,
            display_name="checker_inside",
            roles=["checker"],
        )
        world.users["checker_inside"] = inside.id
        prj.add_member(s, owner, world.project_id, username="checker_inside")
    resp = world.client("checker_inside").post(
        f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}
    )
    assert resp.status_code == 403 and resp.json()["error"]["details"]["reason"] == "not_independent"
    # a developer is no checker at all
    resp = world.client("dev").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    assert resp.status_code == 403
    queue = world.client("checker_inside").get("/api/airlock/requests?scope=queue").json()["items"]
    assert rid not in [r["id"] for r in queue]


def test_return_resubmit_then_reject_leaves_nothing_released(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    dev = world.client("dev")
    req = dev.post("/api/airlock/requests", json=request_body(job, "by_village.csv")).json()
    rid, fid = req["id"], req["files"][0]["id"]
    c1 = world.client("checker")
    assert (
        c1.post(f"/api/airlock/requests/{rid}/votes", json={"choice": "return"}).status_code == 422
    )  # no reason
    c1.post(f"/api/airlock/requests/{rid}/comments", json={"body": "请说明青禾村口径", "file_id": fid})
    back = c1.post(
        f"/api/airlock/requests/{rid}/votes", json={"choice": "return", "comment": "口径不清"}
    ).json()
    assert back["state"] == "returned"
    again = dev.post(f"/api/airlock/requests/{rid}/resubmit", json={}).json()
    assert again["state"] == "under_review" and again["round"] == 2
    assert [r["round"] for r in again["rounds"]] == [1, 2]  # the history is kept
    fid = again["files"][0]["id"]  # a new round takes fresh copies
    # round 2: the first checker may vote again; a rejection is final
    rej = c1.post(
        f"/api/airlock/requests/{rid}/votes", json={"choice": "reject", "comment": "不予出域"}
    ).json()
    assert rej["state"] == "rejected"
    assert dev.get(f"/api/airlock/files/{fid}/download").status_code == 409
    assert dev.post(f"/api/airlock/requests/{rid}/resubmit", json={}).status_code == 409
    assert fid not in [f["id"] for f in dev.get("/api/airlock/released").json()["items"]]


def test_withdraw_and_outsiders(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    dev = world.client("dev")
    rid = dev.post("/api/airlock/requests", json=request_body(job, "by_village.csv", submit=False)).json()[
        "id"
    ]
    assert world.client("dev2").post(f"/api/airlock/requests/{rid}/submit").status_code == 403
    assert world.client("dev2").get(f"/api/airlock/requests/{rid}").status_code == 403
    assert world.client("nobody").get("/api/airlock/requests").status_code == 403
    assert dev.post(f"/api/airlock/requests/{rid}/withdraw").json()["state"] == "withdrawn"
    assert dev.post(f"/api/airlock/requests/{rid}/submit").status_code == 409
    # a job of another project cannot be requested
    other = world.make_job({"x.csv": SAFE_TABLE}, project="other")
    assert dev.post("/api/airlock/requests", json=request_body(other, "x.csv")).status_code == 403


def test_important_data_needs_the_security_officer_too(world: World) -> None:
    from countylab.storage.models import Dataset

    with world.lab.tx() as s:
        ds = s.get(Dataset, world.dataset_id)
        assert ds is not None
        ds.grade = "important"
    try:
        job = world.make_job({"by_village.csv": SAFE_TABLE})
        req = (
            world.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv")).json()
        )
        assert req["grade"] == "important" and req["officer_needed"] and req["checkers_needed"] == 2
        rid = req["id"]
        for who in ("checker", "checker2"):
            after = (
                world.client(who)
                .post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
                .json()
            )
        assert after["state"] == "under_review"  # two checkers are not enough for 重要数据
        third = world.client("checker3").post(
            f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"}
        )
        assert third.status_code == 409 and third.json()["error"]["details"]["reason"] == "slots_full"
        done = world.client("steward").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
        assert done.status_code == 200 and done.json()["state"] == "released", done.text
    finally:
        with world.lab.tx() as s:
            ds = s.get(Dataset, world.dataset_id)
            assert ds is not None
            ds.grade = "general_3"


def test_a_released_table_downloads_for_excel_as_xlsx_and_csv_with_bom(world: World) -> None:
    """The same released cells, re-encoded so WPS/Excel open them cleanly; audited as downloads."""
    import csv
    import io

    import openpyxl

    job = world.make_job({"by_village.csv": SAFE_TABLE, "metrics.json": b'{"rmse": 1.5}'})
    dev = world.client("dev")
    req = dev.post("/api/airlock/requests", json=request_body(job, "by_village.csv", "metrics.json")).json()
    table_id, json_id = (f["id"] for f in req["files"])
    assert dev.get(f"/api/airlock/files/{table_id}/download?format=xlsx").status_code == 409  # not released
    for checker in ("checker", "checker2"):
        assert world.client(checker).post(
            f"/api/airlock/requests/{req['id']}/votes", json={"choice": "approve"}
        )
    before = sum(1 for a, _, _ in audit_actions(world.lab) if a == "release.download")

    original = list(csv.reader(io.StringIO(SAFE_TABLE.decode())))
    xlsx = dev.get(f"/api/airlock/files/{table_id}/download?format=xlsx")
    assert xlsx.status_code == 200 and "by_village.xlsx" in xlsx.headers["content-disposition"]
    assert xlsx.headers["x-content-sha256"] == hashlib.sha256(SAFE_TABLE).hexdigest()
    rows = [[c.value for c in r] for r in openpyxl.load_workbook(io.BytesIO(xlsx.content)).active.iter_rows()]
    assert rows[1] == original[0]  # row 1 is the title, then the header
    assert [[str(v) for v in r] for r in rows[2:]] == original[1:]
    bom = dev.get(f"/api/airlock/files/{table_id}/download?format=csv")
    assert bom.status_code == 200 and bom.content.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(bom.content.decode("utf-8-sig")))) == original
    # a file that is not a table is only ever downloaded as it is; an unknown format is refused
    assert dev.get(f"/api/airlock/files/{json_id}/download?format=xlsx").status_code == 400
    assert dev.get(f"/api/airlock/files/{table_id}/download?format=pdf").status_code == 422
    after = sum(1 for a, _, _ in audit_actions(world.lab) if a == "release.download")
    assert after == before + 2
