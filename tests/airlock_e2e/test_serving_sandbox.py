"""A malicious model file is contained by the sandboxed worker: unpickling runs its code, but
it reads the sandbox's /etc/passwd, cannot open a network socket, cannot write outside, and a
crash or a memory bomb ends only its own worker, which the pool restarts."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from countylab.errors import BugError, Conflict
from countylab.serving.worker import SandboxedWorker, WorkerLimits, WorkerPool

pytestmark = pytest.mark.needs("sandbox")  # skips with plain pytest; fails under make test

_LOADER = "(lambda g: (exec({code!r}, g), g['model'])[1])({{}})"


class _Evil:
    """Pickles to ``eval(<exec code; return model>)``: the classic __reduce__ attack."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, (_LOADER.format(code=self.code),))


def _model(tmp_path: Path, code: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps(_Evil(code)))
    return path


def test_malicious_model_is_contained(tmp_path: Path) -> None:
    outside = tmp_path / "pwned.txt"
    code = f"""
import os, socket
found = {{}}
found['passwd'] = open('/etc/passwd').read()
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(('127.0.0.1', 22))
    found['socket'] = 'connected'
except OSError as exc:
    found['socket'] = type(exc).__name__
for target in ({str(outside)!r}, '/work/x', '/data/model/x', '/etc/x'):
    try:
        open(target, 'w').write('x')
        found[target] = 'written'
    except OSError as exc:
        found[target] = type(exc).__name__
found['host_tmp_visible'] = os.path.exists({str(tmp_path)!r})
found['lab_visible'] = os.path.exists({str(Path(__file__).resolve().parents[2] / "src")!r})
print('not a protocol line')
class M:
    def predict(self, rows):
        return [__import__('json').dumps(found)] * len(rows)
model = M()
"""
    worker = SandboxedWorker(_model(tmp_path, code), limits=WorkerLimits(memory_mb=256))
    try:
        worker.start()
        reply = worker.call([[1]])
    finally:
        worker.stop()
    assert reply["ok"], reply
    found = json.loads(reply["predictions"][0])
    assert "root:" not in found["passwd"] and found["passwd"].startswith("nobody:")
    assert found["socket"] in ("PermissionError", "OSError")
    assert not outside.exists()
    assert all(found[t] != "written" for t in (str(outside), "/work/x", "/data/model/x", "/etc/x"))
    assert found["host_tmp_visible"] is False and found["lab_visible"] is False


def test_crash_restarts_and_memory_bomb_is_contained(tmp_path: Path) -> None:
    code = """
import os
class M:
    def predict(self, rows):
        if rows[0][0] == 'crash':
            os._exit(3)
        if rows[0][0] == 'bomb':
            return [len(bytearray(3 * 2**30))]
        return [len(r) for r in rows]
model = M()
"""
    pool = WorkerPool(lambda p: SandboxedWorker(p, limits=WorkerLimits(memory_mb=256, call_timeout_s=20)))
    path = _model(tmp_path, code)
    try:
        assert pool.predict(1, path, [[1, 2]]) == [2]
        with pytest.raises(BugError):  # it died answering: restarted once, died again
            pool.predict(1, path, [["crash"]])
        assert pool.predict(1, path, [[1, 2, 3]]) == [3]  # a fresh worker
        with pytest.raises((Conflict, BugError)):
            pool.predict(1, path, [["bomb"]])
        assert pool.predict(1, path, [[1]]) == [1]
        assert pool.starts >= 2
    finally:
        pool.stop()


def test_a_non_model_is_refused_at_load(tmp_path: Path) -> None:
    worker = SandboxedWorker(_model(tmp_path, "model = 42"))
    with pytest.raises(Conflict):
        worker.start()
    assert not worker.alive
