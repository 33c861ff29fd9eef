# ruff: noqa: E501  (the workloads are dense one-liners on purpose: they are traced, not read)
"""Regenerate the job sandbox's seccomp allow-list from what the job runtime really calls.

Usage (needs strace; run with the lab's own Python, which is what jobs run):

    .venv/bin/python scripts/seccomp_trace.py            # prints the traced set
    .venv/bin/python scripts/seccomp_trace.py --write    # rewrites src/countylab/sandbox/syscalls.py

Each workload below runs under ``strace -f -c`` (following every thread and child), and the
union of the system-call names in the summaries becomes ``TRACED`` in ``syscalls.py``.  The
workloads exercise CPython (imports, files, threads, subprocess, multiprocessing, signals,
select/poll, time), NumPy (BLAS threads), pandas (CSV, groupby), pyarrow (Parquet, its thread
pool, memory-mapped reads), scikit-learn (random forest, logistic regression, joblib with
processes) and PyTorch when it is installed.  ``setpriv`` and ``/bin/sh`` are traced as well,
because both run under the filter in the sandbox.

Calls the runtime needs but a short trace can miss (other code paths of glibc, PyTorch when
it is absent here) are listed by hand in ``syscalls.py`` as ``EXTRA``, each with its reason.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "src" / "countylab" / "sandbox" / "syscalls.py"

WORKLOADS: dict[str, str] = {
    "cpython": """
        import os, sys, json, subprocess, threading, time, signal, select, tempfile, shutil, hashlib, locale
        import multiprocessing as mp, concurrent.futures as cf, socket, random, uuid, gzip, zipfile, io, sqlite3
        d = tempfile.mkdtemp()
        p = os.path.join(d, "a.txt")
        with open(p, "w") as f: f.write("x" * 100000)
        os.rename(p, p + ".2"); os.stat(p + ".2"); os.chmod(p + ".2", 0o600); os.utime(p + ".2")
        os.symlink(p + ".2", p + ".l"); os.readlink(p + ".l"); os.listdir(d); os.link(p + ".2", p + ".h")
        shutil.copy(p + ".2", p + ".3"); os.truncate(p + ".3", 10); os.unlink(p + ".3")
        with gzip.open(os.path.join(d, "g.gz"), "wb") as g: g.write(b"y" * 1000)
        with zipfile.ZipFile(os.path.join(d, "z.zip"), "w") as z: z.writestr("a", "b")
        con = sqlite3.connect(os.path.join(d, "db.sqlite")); con.execute("create table t(a)"); con.commit()
        subprocess.run([sys.executable, "-c", "print(1)"], check=True, capture_output=True)
        subprocess.run("echo hi | cat > /dev/null", shell=True, check=True)
        with mp.Pool(2) as pool: pool.map(abs, range(10))
        with cf.ThreadPoolExecutor(4) as ex: list(ex.map(hashlib.sha256, [b"a"] * 10))
        ctx = mp.get_context("spawn")
        q = ctx.Queue(); pr = ctx.Process(target=print, args=("child",)); pr.start(); pr.join()
        a, b = socket.socketpair(); a.send(b"x"); b.recv(1); a.close(); b.close()
        r, w = os.pipe(); select.select([r], [], [], 0); os.close(r); os.close(w)
        signal.signal(signal.SIGUSR1, lambda *a: None); os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01); time.time(); time.monotonic(); time.process_time(); os.getloadavg() if hasattr(os, "getloadavg") else 0
        os.cpu_count(); os.sched_getaffinity(0); os.urandom(16); uuid.uuid4();
        import resource; resource.getrlimit(resource.RLIMIT_NOFILE); resource.getrusage(resource.RUSAGE_SELF)
        os.mkfifo(os.path.join(d, "fifo")); shutil.rmtree(d); os.getcwd(); os.umask(0o22)
        print(locale.getpreferredencoding(), os.uname().sysname)
    """,
    "numpy": """
        import numpy as np
        a = np.random.default_rng(0).normal(size=(400, 400))
        np.linalg.inv(a); np.linalg.svd(a[:100, :100]); a @ a; np.fft.fft(a[0])
        np.save("/tmp/countylab-trace.npy", a); np.load("/tmp/countylab-trace.npy", mmap_mode="r").sum()
    """,
    "pandas": """
        import numpy as np, pandas as pd
        df = pd.DataFrame({"a": np.arange(50000), "b": np.arange(50000) % 7, "c": ["x"] * 50000})
        df.to_csv("/tmp/countylab-trace.csv", index=False)
        d2 = pd.read_csv("/tmp/countylab-trace.csv")
        d2.groupby("b").agg({"a": ["mean", "sum"]}); pd.get_dummies(d2["b"]); d2.merge(d2.head(100), on="a")
        pd.cut(d2["a"], 5); d2.pivot_table(index="b", values="a"); d2.describe()
        d2.to_json("/tmp/countylab-trace.json"); d2.to_pickle("/tmp/countylab-trace.pkl")
    """,
    "pyarrow": """
        import pyarrow as pa, pyarrow.parquet as pq, pyarrow.dataset as ds, pyarrow.compute as pc, pyarrow.csv as pcsv
        import numpy as np, os
        os.makedirs("/tmp/countylab-trace-ds", exist_ok=True)
        t = pa.table({"a": np.arange(200000), "b": np.arange(200000) % 13})
        pq.write_table(t, "/tmp/countylab-trace-ds/p.parquet", row_group_size=20000)
        pq.read_table("/tmp/countylab-trace-ds/p.parquet", memory_map=True)
        ds.dataset("/tmp/countylab-trace-ds").to_table(filter=pc.field("b") > 3).to_pandas()
        pcsv.write_csv(t.slice(0, 1000), "/tmp/countylab-trace-ds/t.csv"); pcsv.read_csv("/tmp/countylab-trace-ds/t.csv")
        pc.sum(t["a"]); t.group_by("b").aggregate([("a", "sum")])
    """,
    "sklearn": """
        import numpy as np, joblib
        from sklearn.ensemble import RandomForestRegressor, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression, LinearRegression
        from sklearn.model_selection import train_test_split, cross_val_score
        from sklearn.metrics import mean_absolute_error
        rng = np.random.default_rng(0)
        x = rng.normal(size=(3000, 8)); y = x[:, 0] * 2 + rng.normal(size=3000)
        xa, xb, ya, yb = train_test_split(x, y, random_state=0)
        m = RandomForestRegressor(n_estimators=30, n_jobs=2, random_state=0).fit(xa, ya)
        mean_absolute_error(yb, m.predict(xb))
        cross_val_score(LogisticRegression(), x, y > 0, cv=3, n_jobs=2)
        RandomForestClassifier(n_estimators=10).fit(x, y > 0); LinearRegression().fit(x, y)
        joblib.dump(m, "/tmp/countylab-trace.joblib"); joblib.load("/tmp/countylab-trace.joblib")
        joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(abs)(i) for i in range(10))
        joblib.Parallel(n_jobs=2, backend="threading")(joblib.delayed(abs)(i) for i in range(10))
    """,
    "torch": """
        import importlib.util, sys
        if importlib.util.find_spec("torch") is None:
            return
        import torch
        a = torch.randn(200, 200); (a @ a).sum(); torch.save(a, "/tmp/countylab-trace.pt"); torch.load("/tmp/countylab-trace.pt")
        m = torch.nn.Linear(200, 1); opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad(); loss = m(a).pow(2).mean(); loss.backward(); opt.step()
        dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(a), batch_size=50, num_workers=2)
        [b for b in dl]
    """,
}

_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+\s+(?:\d+\s+)?([a-z0-9_]+)\s*$")


def trace(argv: list[str], workdir: Path) -> set[str]:
    out = workdir / "strace.txt"
    strace = shutil.which("strace")
    if strace is None:
        raise SystemExit("strace is not installed (apt-get install strace)")
    subprocess.run([strace, "-f", "-qq", "-c", "-o", str(out), *argv], check=True, cwd=workdir)
    names = set()
    for line in out.read_text().splitlines():
        m = _LINE.match(line)
        if m and m.group(1) != "total":
            names.add(m.group(1))
    return names


def _setpriv_argv() -> list[str]:
    """setpriv as the sandbox runs it (as root, dropping to the sandbox user) where possible."""
    sys.path.insert(0, str(ROOT / "src"))
    from countylab.sandbox.identity import sandbox_identity

    try:
        return sandbox_identity().setpriv_argv()
    except Exception:  # noqa: BLE001 -- not root or no sandbox user: trace the unprivileged part
        return ["/usr/bin/setpriv", "--no-new-privs", "--"]


def traced_set() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, code in WORKLOADS.items():
            script = work / f"workload_{name}.py"  # not numpy.py: that would shadow the package
            body = textwrap.indent(textwrap.dedent(code), "    ")
            script.write_text(f"def main():\n{body}\n\nif __name__ == '__main__':\n    main()\n")
            found[name] = trace([sys.executable, str(script)], work)
            print(f"{name}: {len(found[name])} system calls", file=sys.stderr)
        found["setpriv"] = trace([*_setpriv_argv(), "/bin/true"], work)
        found["sh"] = trace(["/bin/sh", "-c", "cd /tmp && ls >/dev/null && echo x | cat >/dev/null"], work)
    return found


def render(names: set[str]) -> str:
    body = "".join(f'    "{n}",\n' for n in sorted(names))
    return f"TRACED: tuple[str, ...] = (\n{body})\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the TRACED block of syscalls.py")
    args = parser.parse_args()
    found = traced_set()
    union = set().union(*found.values())
    block = render(union)
    if not args.write:
        print(block)
        return
    text = TARGET.read_text()
    start, end = text.index("TRACED: tuple[str, ...] = ("), text.index(")\n", text.index("TRACED:")) + 2
    TARGET.write_text(text[:start] + block + text[end:])
    print(f"wrote {len(union)} traced system calls to {TARGET}", file=sys.stderr)


if __name__ == "__main__":
    main()
