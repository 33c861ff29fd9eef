"""The prediction worker: runs INSIDE the sandbox, one process per model, stdlib + joblib only.

Protocol (JSON lines): after loading the model it writes ``{"ready": true}`` (or
``{"ok": false, "error": …}`` and exits); then for each input line ``{"rows": [[…], …],
"columns": [names]}`` it
writes ``{"ok": true, "predictions": […]}`` or ``{"ok": false, "error": …}``.

Before the model is unpickled, file descriptor 1 is moved aside and replaced by stderr, so
whatever the model's code prints cannot forge protocol lines; only this module writes to the
saved descriptor.  Everything else (no network, read-only model, no way out) is the sandbox's job.
This file must not import countylab: the lab's source tree is not mounted in the sandbox.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MAX_LINE = 8 * 2**20


def _emitter() -> Any:
    fd = os.dup(1)
    os.dup2(2, 1)  # stray prints of the model go to stderr
    sys.stdout = sys.stderr
    out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def emit(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n")
        out.flush()

    return emit


def _plain(values: Any) -> list[Any]:
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.item() if hasattr(v, "item") else v for v in values]


def _frame(model: Any, request: dict[str, Any]) -> Any:
    """The rows as the model expects them: a pandas DataFrame with the card's input names when
    the model was fitted on named columns (a scikit-learn Pipeline with a ColumnTransformer, say),
    else the plain list of rows."""
    rows, columns = request["rows"], request.get("columns")
    if columns and getattr(model, "feature_names_in_", None) is not None:
        import pandas as pd

        return pd.DataFrame(rows, columns=columns)
    return rows


def main(argv: list[str]) -> int:
    emit = _emitter()
    try:
        import joblib

        model = joblib.load(argv[1])
        if not callable(getattr(model, "predict", None)):
            raise TypeError("the object has no predict() method")
    except BaseException as exc:  # noqa: BLE001 - report any failure to load, then stop
        emit({"ok": False, "error": f"load failed: {type(exc).__name__}: {exc}"[:500]})
        return 2
    emit({"ready": True})
    for line in sys.stdin.buffer:
        try:
            if len(line) > MAX_LINE:
                raise ValueError("request too large")
            request = json.loads(line)
            emit({"ok": True, "predictions": _plain(model.predict(_frame(model, request)))})
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
            emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
