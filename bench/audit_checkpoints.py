"""Audit checkpoints: what signing and checking them costs.

    .venv/bin/python bench/audit_checkpoints.py                 # 20,000 events, a checkpoint every 200
    .venv/bin/python bench/audit_checkpoints.py --events 200000 --every 1000

Builds a migrated lab on SQLite in a temporary folder, appends ``--events`` audit events (100 per
transaction) and writes a checkpoint after every ``--every`` of them, as the background service
would after each interval.  Reports the append rate, the checkpoint latency (which includes the
check of the events since the previous checkpoint and the fsync of the witness line), the time
of ``audit.verify`` (the chain alone) and of the verification against every checkpoint, and the
witness size.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from countylab import audit
from countylab.audit.checkpoints import CheckpointService, witness_path
from countylab.audit.verifier import verify_configured
from countylab.audit.witness import Witness
from countylab.config import Settings
from countylab.lab import Lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "lab")  # type: ignore[call-arg]
        lab = Lab(settings)
        lab.migrate()
        service = CheckpointService.from_settings(settings, lab.read_sessions)
        latencies: list[float] = []
        appended = 0
        append_s = 0.0
        while appended < args.events:
            batch = min(100, args.events - appended)
            t0 = time.perf_counter()
            with lab.tx() as s:
                for i in range(batch):
                    audit.record(s, None, "bench.event", f"t:{appended + i}", i=appended + i, note="基准")
            append_s += time.perf_counter() - t0
            appended += batch
            if appended % args.every == 0 or appended == args.events:
                t0 = time.perf_counter()
                service.run_once()
                latencies.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with lab.read() as s:
            chain = audit.verify(s)
        chain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with lab.read() as s:
            verdict = verify_configured(s, settings)
        full_s = time.perf_counter() - t0
        witness = Witness(witness_path(settings))
        size = sum(f.stat().st_size for f in witness.files())
        lab.close()
    assert chain.ok and verdict.ok, verdict.findings
    print(
        json.dumps(
            {
                "events": args.events,
                "checkpoints": verdict.checkpoints,
                "append_events_per_s": round(args.events / append_s),
                "checkpoint_ms_median": round(statistics.median(latencies), 2),
                "checkpoint_ms_max": round(max(latencies), 2),
                "verify_chain_s": round(chain_s, 3),
                "verify_with_checkpoints_s": round(full_s, 3),
                "witness_bytes_per_checkpoint": round(size / max(verdict.checkpoints, 1)),
            }
        )
    )


if __name__ == "__main__":
    main()
