"""Read a sample of a model's training data for the memorisation tests (:mod:`.assess`).

Runs in the lab's own process on the warehouse's Parquet files (trusted code, real data); what
it reads never leaves: the rows go only to the model's sandboxed worker, and the report keeps
figures, not rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import duckdb

from countylab.serving.assess import SAMPLE_ROWS, SEED, TrainingSample

RARE_VALUES_MAX = 200_000
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "UBIGINT")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _files(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def load_sample(
    sources: Sequence[tuple[str, int | None, list[Path]]], inputs: Sequence[str], target: str | None
) -> TrainingSample | None:
    """A seeded sample of the first training dataset holding every input (and the target)."""
    wanted = [*inputs, *([target] if target else [])]
    for name, version, paths in sources:
        files = [p for p in paths if p.exists()]
        if not files:
            continue
        con = duckdb.connect(":memory:", config={"autoload_known_extensions": False})
        try:
            src = f"read_parquet({_files(files)}, union_by_name = true)"
            described = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
            types = {str(r[0]): str(r[1]) for r in described}
            if not all(c in types for c in wanted):
                continue
            cols = ", ".join(_q(c) for c in wanted)
            rows = con.execute(
                f"SELECT {cols} FROM {src} USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE ({SEED})"
            ).fetchall()
            rare: Counter[float] = Counter()
            for col, typ in types.items():
                if not typ.startswith(_NUMERIC):
                    continue
                found = con.execute(
                    f"SELECT CAST({_q(col)} AS DOUBLE) AS v, count(*) FROM {src} "
                    f"WHERE {_q(col)} IS NOT NULL GROUP BY v HAVING count(*) <= 2 LIMIT {RARE_VALUES_MAX}"
                ).fetchall()
                for value, n in found:
                    rare[round(float(value), 6)] += int(n)
            return TrainingSample(name, version, tuple(wanted), [tuple(r) for r in rows], rare)
        finally:
            con.close()
    return None
