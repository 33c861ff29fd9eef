"""Long-lived sandboxed prediction workers, one per model, supervised by the lab.

A model file is code: unpickling runs whatever ``__reduce__`` says.  So a model is loaded only
inside the job sandbox (:mod:`countylab.sandbox`): the same bubblewrap argv (every namespace, no
network, uid 65534, no capabilities, empty environment, read-only root), the same seccomp filter
(no sockets but AF_UNIX), a cgroup for memory/pids/CPU where the host has one, and rlimits
(address space, CPU, file size, open files).  The model folder is bound read-only at
``/data/model``; :mod:`.worker_main` is the only code at ``/work``.  Unlike a job, the process
stays alive and talks JSON lines over its stdin/stdout pipes, so a prediction costs a pipe round
trip instead of a sandbox start and a model load.

:class:`WorkerPool` starts a worker on first use, serialises calls per model, restarts a worker
that died (crash, OOM kill, CPU limit) on the next call, kills one that does not answer in time,
and stops workers idle for ``idle_timeout_s`` (its reaper thread runs with the lab's background
services).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from countylab.errors import BugError, Conflict
from countylab.sandbox import bwrap as bw
from countylab.sandbox.cgroups import JobCgroup
from countylab.sandbox.confine import Handshake, release
from countylab.sandbox.identity import ensure_readable
from countylab.sandbox.runner import default_cgroup_host, sandbox_argv
from countylab.sandbox.spec import SandboxSpec
from countylab.sandbox.supervise import rlimits_for

log = logging.getLogger(__name__)

WORKER_MAIN = Path(__file__).with_name("worker_main.py")
MAX_REPLY = 16 * 2**20


@dataclass(frozen=True)
class WorkerLimits:
    memory_mb: int = 1024
    cpu_seconds: int = 3600  # CPU time over the worker's life; it is restarted after
    start_timeout_s: float = 60.0
    call_timeout_s: float = 30.0
    pids: int = 32
    tmpfs_mb: int = 16


class WorkerDied(Exception):
    """The worker ended or stopped answering; the pool restarts it on the next call."""


class SandboxedWorker:
    """One sandboxed process serving one model file."""

    def __init__(
        self, model_path: Path, *, limits: WorkerLimits = WorkerLimits(), python_prefix: Path | None = None
    ) -> None:
        self.model_path = model_path
        self.limits = limits
        self.python_prefix = python_prefix
        self.proc: subprocess.Popen[bytes] | None = None
        self.cgroup: JobCgroup | None = None
        self.tmp: Path | None = None
        self.buffer = b""
        self.last_used = time.monotonic()
        self.start_s = 0.0
        self.protections: dict[str, bool] = {}

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> float:
        """Start the sandbox and load the model; the seconds it took."""
        binary = bw.find_bwrap()
        if binary is None:
            raise Conflict(
                "本机未安装 bubblewrap，无法在沙箱中提供模型服务",
                "bubblewrap is not installed: models cannot be served in the sandbox",
                reason="no_sandbox",
            )
        started = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="countylab-model-"))
        code, outbox = self.tmp / "code", self.tmp / "outbox"
        code.mkdir()
        outbox.mkdir(mode=0o700)
        shutil.copyfile(WORKER_MAIN, code / "worker_main.py")
        # the sandbox user reads the model only through its read-only bind mount
        ensure_readable(self.model_path.parent)
        spec = SandboxSpec(
            command=["python", "-I", "-B", "/work/worker_main.py", f"/data/model/{self.model_path.name}"],
            code_dir=code,
            outbox_dir=outbox,
            datasets={"model": self.model_path.parent},
            cpu_seconds=self.limits.cpu_seconds,
            memory_mb=self.limits.memory_mb,
            wall_seconds=self.limits.start_timeout_s,
            pids=self.limits.pids,
            tmpfs_mb=self.limits.tmpfs_mb,
            python_prefix=self.python_prefix,
            file_size_mb=1,
        )
        version = bw.bwrap_version(binary)
        runtime = bw.python_runtime(spec.python_prefix)
        host = default_cgroup_host()
        if host is not None:
            try:
                self.cgroup = host.create_job(
                    f"model-{os.getpid()}-{secrets.token_hex(4)}", spec.memory_mb, spec.pids, 1.0
                )
            except OSError as exc:
                log.warning("no cgroup for the model worker (%s): rlimits only", exc)
        fds: list[int] = []
        handshake = Handshake.open()
        try:
            argv = sandbox_argv(spec, binary, version, runtime, handshake, fds)
            with (self.tmp / "stderr.log").open("wb") as err:
                self.proc = subprocess.Popen(  # noqa: S603 -- argv built by the sandbox module, no shell
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env={},
                    pass_fds=[*fds, *handshake.child_fds()],
                    start_new_session=True,
                    close_fds=True,
                )
            handshake.spawned()
            for fd in fds:
                os.close(fd)
            fds = []
            release(
                handshake, self.proc, self.cgroup, rlimits_for(spec), timeout_s=self.limits.start_timeout_s
            )
        except BaseException:
            self.stop()
            raise
        finally:
            for fd in fds:
                os.close(fd)
            handshake.close()
        controllers = self.cgroup.controllers if self.cgroup is not None else frozenset()
        self.protections = {
            "namespaces": True,
            "no_network": True,
            "seccomp": True,
            "rlimits": True,
            "cgroup_memory": "memory" in controllers,
            "cgroup_pids": "pids" in controllers,
        }
        try:
            hello = self._read(self.limits.start_timeout_s)
        except WorkerDied:
            self.stop()
            raise
        if not hello.get("ready"):
            log.warning("model %s failed to load: %s", self.model_path, str(hello.get("error", ""))[:300])
            self.stop()
            # the model chose that error text: it is logged for the operator, never answered
            raise Conflict("模型无法加载", "the model cannot be loaded", reason="model_load_failed")
        self.start_s = time.monotonic() - started
        self.last_used = time.monotonic()
        return self.start_s

    def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerDied("timeout")
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise WorkerDied(f"exited: {self.stderr_tail()}")
                self.buffer += chunk
                if len(self.buffer) > MAX_REPLY:
                    raise WorkerDied("reply too large")
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise WorkerDied("garbled reply") from exc
        if not isinstance(message, dict):
            raise WorkerDied("garbled reply")
        return message

    def call(self, rows: list[list[Any]], columns: list[str] | None = None) -> dict[str, Any]:
        if not self.alive or self.proc is None or self.proc.stdin is None:
            raise WorkerDied("not running")
        self.last_used = time.monotonic()
        message = {"rows": rows, "columns": columns}
        try:
            self.proc.stdin.write(json.dumps(message, allow_nan=False).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied("stdin closed") from exc
        reply = self._read(self.limits.call_timeout_s)
        self.last_used = time.monotonic()
        return reply

    def stderr_tail(self, limit: int = 2000) -> str:
        path = self.tmp / "stderr.log" if self.tmp is not None else None
        if path is None or not path.exists():
            return ""
        return path.read_bytes()[-limit:].decode(errors="replace")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        if self.cgroup is not None:
            self.cgroup.kill_all()
            self.cgroup.remove()
            self.cgroup = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self.buffer = b""


WorkerFactory = Callable[[Path], SandboxedWorker]


def _plain_value(p: Any) -> bool:
    """A scalar, or one row of scalars for a model with several outputs."""
    if isinstance(p, list):
        return len(p) <= 20 and all(isinstance(v, str | int | float | bool) or v is None for v in p)
    return isinstance(p, str | int | float | bool) or p is None


class WorkerPool:
    """At most one worker per model; calls to one model are serialised on its lock."""

    def __init__(self, factory: WorkerFactory | None = None, *, idle_timeout_s: float = 600.0) -> None:
        self.factory: WorkerFactory = factory or (lambda path: SandboxedWorker(path))
        self.idle_timeout_s = idle_timeout_s
        self._workers: dict[int, SandboxedWorker] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        # bubblewrap runs with --die-with-parent, and the kernel's parent-death signal follows the
        # *thread* that forked it: a worker started from a request thread (which the server's
        # thread pool retires when idle) would be killed with that thread.  So every worker is
        # started from this one long-lived thread.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-spawner")
        self.starts = 0

    def _lock(self, model_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(model_id, threading.Lock())

    def predict(
        self, model_id: int, model_path: Path, rows: list[list[Any]], columns: list[str] | None = None
    ) -> list[Any]:
        """The model's raw predictions (the caller types and checks them against the card).

        A model's own error text is never passed on: the model chose it, so it can carry data.
        """
        with self._lock(model_id):
            for attempt in (1, 2):
                worker = self._workers.get(model_id)
                fresh = worker is None or not worker.alive
                if worker is None or not worker.alive:
                    if worker is not None:
                        worker.stop()
                    worker = self.factory(model_path)
                    self._spawner.submit(worker.start).result()
                    self.starts += 1
                    self._workers[model_id] = worker
                try:
                    reply = worker.call(rows, columns)
                except WorkerDied as exc:
                    worker.stop()
                    self._workers.pop(model_id, None)
                    if fresh or attempt == 2:
                        raise BugError("模型服务进程异常退出", f"the model worker died: {exc}") from exc
                    continue  # a worker that had served before: restart once
                if not reply.get("ok"):
                    raise Conflict("模型预测失败", "the model could not predict", reason="predict_failed")
                predictions = reply.get("predictions")
                if not isinstance(predictions, list) or len(predictions) != len(rows):
                    raise Conflict(
                        "模型返回的预测结果数量不符",
                        "the model returned the wrong number of predictions",
                        reason="predict_failed",
                    )
                if any(not _plain_value(p) for p in predictions):
                    raise Conflict(
                        "模型只能返回数值或文本预测",
                        "a model may return plain values only",
                        reason="predict_failed",
                    )
                return predictions
        raise BugError("模型服务进程异常退出", "the model worker died")  # pragma: no cover

    def worker(self, model_id: int) -> SandboxedWorker | None:
        return self._workers.get(model_id)

    def evict(self, model_id: int) -> None:
        with self._lock(model_id):
            worker = self._workers.pop(model_id, None)
            if worker is not None:
                worker.stop()

    def reap_idle(self) -> int:
        now = time.monotonic()
        stale = [
            m
            for m, w in list(self._workers.items())
            if not w.alive or now - w.last_used > self.idle_timeout_s
        ]
        for model_id in stale:
            lock = self._lock(model_id)
            if lock.acquire(blocking=False):
                try:
                    worker = self._workers.pop(model_id, None)
                    if worker is not None:
                        worker.stop()
                finally:
                    lock.release()
        return len(stale)

    def start(self) -> None:
        if self._reaper is not None:
            return
        self._stop.clear()
        self._reaper = threading.Thread(target=self._loop, name="model-workers", daemon=True)
        self._reaper.start()

    def _loop(self) -> None:
        while not self._stop.wait(min(30.0, max(1.0, self.idle_timeout_s / 4))):
            try:
                self.reap_idle()
            except Exception:  # noqa: BLE001 - the reaper must keep running
                log.exception("reaping idle model workers failed")

    def stop(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
            self._reaper = None
        for model_id in list(self._workers):
            self.evict(model_id)

    def close(self) -> None:
        """Stop every worker and the spawner thread (the pool cannot be used afterwards)."""
        self.stop()
        self._spawner.shutdown(wait=True)
