"""Escape attempts that must fail, against real bubblewrap, seccomp, cgroups and rlimits."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from countylab.sandbox import RunState
from tests.sandbox.sandbox_helpers import err, needs_bwrap, out

pytestmark = [pytest.mark.sandbox, needs_bwrap]


def _procs_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_happy_path_reads_parquet_and_writes_outbox(run_job, tmp_path):
    ds = tmp_path / "people"
    ds.mkdir()
    pq.write_table(pa.table({"age": [30, 40, 50], "town": ["a", "b", "a"]}), ds / "part-0.parquet")
    result = run_job(
        """
        import numpy as np, pandas as pd, sklearn
        df = pd.read_parquet("/data/people")
        by_town = df.groupby("town")["age"].mean()
        by_town.to_csv("/outbox/result.csv")
        print("mean", float(np.mean(df["age"])))
        """,
        datasets={"people": ds},
    )
    assert result.state is RunState.SUCCEEDED, err(result)
    assert out(result).strip() == "mean 40.0"
    assert (result.stdout_path.parent.parent / "result.csv").read_text().splitlines() == [
        "town,age",
        "a,40.0",
        "b,40.0",
    ]
    assert all(result.protections.values()), result.protections
    assert result.cpu_s > 0 and result.memory_peak_mb is not None


def test_network_tcp_udp_and_dns_fail(run_job):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    try:
        result = run_job(
            f"""
            import socket, json
            res = {{}}
            def attempt(name, fn):
                try:
                    fn(); res[name] = "ok"
                except OSError as e:
                    res[name] = type(e).__name__ + ":" + str(e.errno)
            attempt("tcp", lambda: socket.create_connection(("127.0.0.1", {tcp.getsockname()[1]}), timeout=1))
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
                b"x", ("127.0.0.1", {udp.getsockname()[1]})))
            attempt("outside", lambda: socket.create_connection(("1.1.1.1", 53), timeout=1))
            attempt("ipv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
            attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
            a, b = socket.socketpair(socket.AF_UNIX)
            res["unix"] = "ok"
            print(json.dumps(res))
            """
        )
        res = json.loads(out(result))
        for name in ("tcp", "udp", "outside", "ipv6", "dns"):
            assert res[name] != "ok", (name, res)
        assert res["tcp"] == "PermissionError:1"  # seccomp EPERM on socket(AF_INET)
        assert res["unix"] == "ok"
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recv(10)
    finally:
        tcp.close()
        udp.close()


def test_host_files_are_invisible(run_job, tmp_path):
    lab_data = tmp_path / "labdata"
    lab_data.mkdir()
    (lab_data / "other_project.parquet").write_text("secret rows")
    result = run_job(
        f"""
        import os, json
        print(json.dumps({{
            "passwd": open("/etc/passwd").read(),
            "lab": os.path.exists({str(lab_data)!r}),
            "other": os.path.exists({str(lab_data / "other_project.parquet")!r}),
            "repo": os.path.exists("/work/main/src"),
            "root_home": sorted(os.listdir("/root")),
            "etc": sorted(os.listdir("/etc")),
        }}))
        """
    )
    res = json.loads(out(result))
    assert res["passwd"] != Path("/etc/passwd").read_text()
    assert "root:" not in res["passwd"] and "nobody" in res["passwd"]
    assert res["lab"] is False and res["other"] is False and res["repo"] is False
    assert res["root_home"] in ([], [".pyenv"])  # only the path down to the Python runtime
    assert res["etc"] == ["group", "hosts", "ld.so.cache", "passwd"]


def test_host_processes_are_invisible(run_job):
    host_pid = os.getpid()
    result = run_job(
        f"""
        import os
        try:
            os.kill({host_pid}, 0)
            reach = "reached"
        except ProcessLookupError:
            reach = "no such process"
        print(sorted(os.listdir("/proc")), os.getpid(), reach)
        """
    )
    # no procfs at all (nothing to list), and the pid namespace hides every host process
    assert out(result).strip() == "[] 2 no such process", err(result)


def test_writes_outside_outbox_fail(run_job, tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    result = run_job(
        """
        import json
        res = {}
        for path in ["/work/x", "/data/ds/x", "/usr/lib/x", "/etc/passwd", "/opt/venv/x", "/x"]:
            try:
                open(path, "w").write("x"); res[path] = "ok"
            except OSError as e:
                res[path] = e.errno
        open("/outbox/ok.txt", "w").write("fine")
        open("/tmp/ok.txt", "w").write("fine")
        print(json.dumps(res))
        """,
        datasets={"ds": ds},
    )
    res = json.loads(out(result))
    assert all(v != "ok" for v in res.values()), res
    assert result.state is RunState.SUCCEEDED
    assert list(ds.iterdir()) == []


def test_ptrace_mount_and_user_namespaces_kill_the_caller(run_job):
    result = run_job(
        """
        import json, subprocess, sys
        calls = {
            "ptrace": "libc.ptrace(0, 0, None, None)",
            "ptrace_attach": "libc.ptrace(16, 1, None, None)",
            "mount": "libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)",
            "unshare_user": "libc.unshare(0x10000000)",
            "unshare_net": "libc.unshare(0x40000000)",
            "setns": "libc.setns(0, 0)",
        }
        res = {}
        for name, call in calls.items():
            code = "import ctypes; libc = ctypes.CDLL(None, use_errno=True); print(" + call + ")"
            res[name] = subprocess.run([sys.executable, "-c", code], capture_output=True).returncode
        res["cli_unshare"] = subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode
        print(json.dumps(res))
        """
    )
    res = json.loads(out(result))
    assert res.pop("cli_unshare") != 0
    assert all(v == -31 for v in res.values()), res  # SIGSYS: killed by the seccomp filter
    assert result.state is RunState.SUCCEEDED  # the parent survived: only the callers died


def test_a_denied_call_in_the_job_itself_is_recorded(run_job):
    result = run_job("import ctypes\nctypes.CDLL(None).unshare(0x10000000)\nprint('survived')\n")
    assert result.state is RunState.SECCOMP_DENIED
    assert result.security["seccomp_denied"] is True and out(result) == ""


def test_fork_bomb_is_contained(run_job):
    marker = "forkbomb-" + os.urandom(4).hex()
    result = run_job(
        f"""
        import os, sys
        sys.argv.append({marker!r})
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        pids=16,
        wall_seconds=2,
    )
    assert result.state is RunState.KILLED_TIMEOUT
    assert result.pids_peak is not None and result.pids_peak <= 16
    assert result.pids_limit_hits > 0
    assert _procs_with(marker) == []
    assert os.fork and os.getpid() > 0  # the host still runs


def test_memory_bomb_is_killed(run_job):
    result = run_job(
        """
        chunks = []
        while True:
            chunks.append(b"\\x01" * 10_000_000)
        """,
        memory_mb=80,
    )
    assert result.state is RunState.KILLED_MEMORY, (result, err(result))
    assert result.memory_peak_mb is not None and result.memory_peak_mb <= 81


def test_disk_fill_is_capped(run_job):
    result = run_job(
        """
        import errno, json
        res = {}
        for path in ["/tmp/fill", "/outbox/fill"]:
            try:
                with open(path, "wb") as f:
                    for _ in range(40):
                        f.write(b"\\0" * 1_000_000)
                res[path] = "ok"
            except OSError as e:
                res[path] = errno.errorcode[e.errno]
        print(json.dumps(res))
        """,
        tmpfs_mb=8,
        file_size_mb=4,
    )
    res = json.loads(out(result))
    assert res == {"/tmp/fill": "EFBIG", "/outbox/fill": "EFBIG"}
    assert (result.stdout_path.parent.parent / "fill").stat().st_size <= 4 * 1024 * 1024


def test_tmpfs_size_cap_applies_across_files(run_job):
    result = run_job(
        """
        import errno
        try:
            for i in range(20):
                open(f"/tmp/f{i}", "wb").write(b"\\0" * 1_000_000)
            print("ok")
        except OSError as e:
            print(errno.errorcode[e.errno])
        """,
        tmpfs_mb=4,
    )
    assert out(result).strip() == "ENOSPC"


def test_cpu_spin_is_killed(run_job):
    result = run_job("while True:\n    pass\n", cpu_seconds=1, wall_seconds=10)
    assert result.state is RunState.KILLED_CPU
    assert result.wall_s < 5


def test_cpu_budget_counts_all_processes(run_job):
    # Two spinning processes: per-process RLIMIT_CPU alone would allow 2 CPU-seconds in total;
    # the cgroup CPU count stops the job at about 1.
    result = run_job(
        """
        import os
        os.fork()
        while True:
            pass
        """,
        cpu_seconds=1,
        cpu_cores=2.0,
        wall_seconds=10,
    )
    assert result.state is RunState.KILLED_CPU
    assert 1.0 <= result.cpu_s < 1.6, result.cpu_s


def test_environment_does_not_leak(run_job, monkeypatch):
    monkeypatch.setenv("COUNTYLAB_TEST_SECRET", "s3cr3t-token")
    result = run_job(
        """
        import os
        leaked = "s3cr3t-token" in repr(dict(os.environ))
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    leaked |= b"s3cr3t-token" in open(f"/proc/{p}/environ", "rb").read()
                except OSError:
                    pass
        print(leaked, sorted(os.environ))
        """
    )
    leaked, _, names = out(result).partition(" ")
    assert leaked == "False"
    assert "COUNTYLAB_TEST_SECRET" not in names


def test_job_that_never_exits_is_killed_with_its_children(run_job):
    marker = "sleeper-" + os.urandom(4).hex()
    result = run_job(
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", {marker!r}],
                         start_new_session=True)
        print("started", flush=True)
        time.sleep(1000)
        """,
        wall_seconds=1.5,
    )
    assert result.state is RunState.KILLED_TIMEOUT
    assert 1.5 <= result.wall_s < 4
    assert out(result).strip() == "started"
    assert _procs_with(marker) == []


def test_cancel_kills_the_running_job_and_its_children_at_once(run_job):
    import threading

    marker = "cancelled-" + os.urandom(4).hex()
    cancel = threading.Event()
    threading.Timer(0.8, cancel.set).start()
    result = run_job(
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", {marker!r}],
                         start_new_session=True)
        print("started", flush=True)
        time.sleep(1000)
        """,
        wall_seconds=60,
        cancel=cancel,
    )
    assert result.state is RunState.CANCELLED
    assert result.wall_s < 5  # not the 60 s wall limit
    assert out(result).strip() == "started"
    assert _procs_with(marker) == []


def test_planted_log_symlink_is_not_followed(run_job, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    result = run_job(
        f"""
        import os
        os.makedirs("/outbox/logs")
        os.symlink({str(victim)!r}, "/outbox/logs/stdout.txt")
        print("hello")
        """
    )
    assert victim.read_text() == "untouched"
    assert not result.stdout_path.is_symlink()
    assert result.stdout_path.read_text() == "hello\n"


def test_output_is_capped(run_job):
    result = run_job("print('x' * 100_000)", log_limit_bytes=1000)
    assert result.stdout_truncated
    text = out(result)
    assert text.startswith("x" * 1000) and "truncated at 1000 bytes" in text and len(text) < 1100
