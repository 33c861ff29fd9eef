#!/usr/bin/env python3
"""Add or update message-catalog entries in both languages at once (safe to run concurrently).

    python scripts/i18n_add.py KEY "中文" "English"
    python scripts/i18n_add.py --json entries.json      # {"key": ["中文", "English"], ...}
"""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path

DIR = Path(__file__).resolve().parent.parent / "src" / "countylab" / "i18n"


def add(entries: dict[str, tuple[str, str]]) -> None:
    with open(DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for i, lang in enumerate(("zh-CN", "en")):
            path = DIR / f"{lang}.json"
            data = json.loads(path.read_text(encoding="utf-8"))
            for key, values in entries.items():
                data[key] = values[i]
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            tmp.replace(path)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--json":
        raw = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        add({k: (v[0], v[1]) for k, v in raw.items()})
        return 0
    if len(argv) == 3:
        add({argv[0]: (argv[1], argv[2])})
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
