"""The releasing vote's transaction only moves files: the released bytes are regenerated and the
ledger's frequency tables parsed before it (``AirlockService.stage_release``), so the audit head is
never held while files are parsed, written and fsynced (issue 11)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from countylab.identity import service as ids
from countylab.storage.airlock_models import LedgerTable, ReleaseFile
from tests.airlock_e2e.conftest import SAFE_TABLE, World, request_body


def test_the_releasing_vote_uses_what_was_staged_before_its_transaction(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    created = world.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv"))
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert (
        world.client("checker")
        .post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
        .status_code
        == 200
    )
    lab = world.lab
    with lab.read() as s:
        checker2 = ids.principal_for(s, ids.get_user(s, world.users["checker2"]), "session")
        (f,) = s.query(ReleaseFile).filter_by(request_id=rid).all()
        stored = Path(f.stored_path)
    staged = lab.airlock.stage_release(lab.read, checker2, rid)
    assert set(staged) == {f.id} and staged[f.id].path.exists()
    # the submitted copy is gone: a release that parsed it inside the transaction would fail now
    kept = stored.read_bytes()
    stored.chmod(0o600)
    stored.unlink()
    try:
        with lab.tx() as s:
            req = lab.airlock.vote(s, checker2, rid, "approve", staged=staged)
            assert req.state == "released"
    finally:
        lab.airlock.discard_staged(staged)
        stored.write_bytes(kept)
    with lab.read() as s:
        released = s.get(ReleaseFile, f.id)
        assert released is not None and released.released_path is not None
        assert Path(released.released_path).read_bytes() == SAFE_TABLE
        assert released.released_sha256 == hashlib.sha256(SAFE_TABLE).hexdigest()
        assert s.query(LedgerTable).filter_by(request_id=rid).count() >= 1  # indexed from the staged parse
    assert not staged[f.id].path.exists()
    assert not list((lab.airlock.store_dir / "released" / ".staging").iterdir())


def test_staging_is_dropped_when_the_vote_does_not_release(world: World) -> None:
    job = world.make_job({"by_village.csv": SAFE_TABLE})
    created = world.client("dev").post("/api/airlock/requests", json=request_body(job, "by_village.csv"))
    rid = created.json()["id"]
    resp = world.client("checker").post(f"/api/airlock/requests/{rid}/votes", json={"choice": "approve"})
    assert resp.status_code == 200 and resp.json()["state"] == "under_review"  # one of two votes
    folder = world.lab.airlock.store_dir / "released" / ".staging"
    assert not folder.exists() or not list(folder.iterdir())
    # and someone who may not review gets no work done for them
    with world.lab.read() as s:
        dev = ids.principal_for(s, ids.get_user(s, world.users["dev"]), "session")
    assert world.lab.airlock.stage_release(world.lab.read, dev, rid) == {}
