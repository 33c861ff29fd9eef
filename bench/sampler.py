"""Run a command-line entry point with a sampling profiler: ``python bench/sampler.py OUT -- ARGS``.

A daemon thread reads ``sys._current_frames()`` every ``COUNTYLAB_SAMPLE_MS`` (default 5 ms) and
counts each thread's stack, innermost frame last.  At exit (``countylab serve`` exits on SIGTERM
through uvicorn's graceful shutdown) it writes OUT as JSON: per-function *self* and *inclusive*
sample counts over the threads that were running Python (idle threads blocked in ``wait``,
``select``, ``accept`` or the threadpool's queue are counted apart, so the figures show where the
busy time goes).  Sampling is used instead of cProfile because cProfile slows every call of the
request path several-fold and so would change the very latencies the load benchmark measures.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import runpy
import signal
import sys
import threading
import time
from types import FrameType

IDLE = {
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("selectors.py", "select"),
    ("base_events.py", "_run_once"),
    ("socket.py", "accept"),
    ("thread.py", "_worker"),
    ("_base.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("executors.py", "_work"),  # the job executor's threads, blocked in SimpleQueue.get (C code)
}


def _key(frame: FrameType) -> tuple[str, str]:
    return (os.path.basename(frame.f_code.co_filename), frame.f_code.co_name)


def main() -> None:
    out, args = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    period = float(os.environ.get("COUNTYLAB_SAMPLE_MS", "5")) / 1000
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    stacks: collections.Counter[str] = collections.Counter()
    totals = {"busy": 0, "idle": 0, "ticks": 0}
    me = threading.get_ident()

    def sample() -> None:
        while True:
            time.sleep(period)
            totals["ticks"] += 1
            for ident, frame in sys._current_frames().items():
                if ident == me or ident == threading.get_ident():
                    continue
                if _key(frame) in IDLE:
                    totals["idle"] += 1
                    continue
                totals["busy"] += 1
                names: list[str] = []
                f: FrameType | None = frame
                while f is not None:
                    name, func = _key(f)
                    names.append(f"{name}:{func}")
                    f = f.f_back
                self_counts[names[0]] += 1
                for n in set(names):
                    incl_counts[n] += 1
                stacks[";".join(reversed(names[:12]))] += 1

    def dump() -> None:
        report = {
            "period_ms": period * 1000,
            **totals,
            "self": self_counts.most_common(60),
            "inclusive": incl_counts.most_common(120),
            "stacks": stacks.most_common(80),
        }
        with open(out, "w") as fh:
            json.dump(report, fh, ensure_ascii=False, indent=1)

    atexit.register(dump)
    # uvicorn handles SIGTERM itself, then restores this handler and raises the signal again
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))
    threading.Thread(target=sample, name="sampler", daemon=True).start()
    sys.argv = args
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
