"""Elderly-care demand model (养老服务需求模型): how many home-care services will a resident use?

Reads the residents register and the home-care service records of the county, trains a
random-forest regressor that predicts each older resident's number of service visits from
age, living alone, gender, income and town, and writes to the outbox:

- metrics.json          test-set error and sizes (no rows)
- metrics_table.csv     an aggregate table: age band x living alone, only cells with >= 10 residents
- feature_importance.svg  (and .png when matplotlib is installed)
- model.joblib          the fitted model; it stays in the lab for the model registry

Paths are the sandbox's: /data/<dataset>/*.parquet and /outbox.  Without the sandbox
(``countylab run`` on a machine with no bubblewrap) COUNTYLAB_DATA / COUNTYLAB_OUTBOX say where.
Never print rows or identifiers: logs are outputs and are checked like any other.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

DATA = Path(os.environ.get("COUNTYLAB_DATA", "/data"))
OUTBOX = Path(os.environ.get("COUNTYLAB_OUTBOX", "/outbox"))
MIN_CELL = 10  # the lab's SDC threshold: smaller cells are not written
SEED = 2026


def read(name: str) -> pd.DataFrame:
    files = sorted((DATA / name).glob("*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {DATA / name}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def features(residents: pd.DataFrame, visits: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    older = residents[residents["age"] >= 60]
    if len(older) < 30:  # tiny dummy data: use everyone rather than fail
        older = residents
    x = pd.DataFrame({
        "age": older["age"].astype(float),
        "lives_alone": older["lives_alone"].fillna(False).astype(bool).astype(int),
        "female": (older["gender"] == "女").astype(int),
        "income": older["income"].fillna(0).astype(float),
    })
    towns = pd.get_dummies(older["town_code"].astype(str), prefix="town", dtype=int)
    x = pd.concat([x, towns], axis=1)
    y = older["resident_id"].map(visits).fillna(0).astype(float)
    return x, y


def age_band(age: pd.Series) -> pd.Series:
    return pd.cut(age, [0, 60, 70, 80, 200], right=False, labels=["<60", "60-69", "70-79", "80+"]).astype(str)


def write_svg(names: list[str], values: list[float], path: Path) -> None:
    """A horizontal bar chart written by hand (no plotting library needed)."""
    bar_h, left, width = 22, 170, 360
    top = max(values) if values and max(values) > 0 else 1.0
    rows = []
    for i, (name, v) in enumerate(zip(names, values, strict=True)):
        y = 40 + i * bar_h
        w = width * v / top
        rows.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(name)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="#2f6fb0"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="11">{v:.3f}</text>'
        )
    height = 60 + bar_h * len(names)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
        f'font-family="sans-serif"><text x="10" y="22" font-size="15">Feature importance</text>'
        + "".join(rows) + "</svg>\n",
        encoding="utf-8",
    )


def maybe_png(names: list[str], values: list[float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1))
    ax.barh(names[::-1], values[::-1], color="#2f6fb0")
    ax.set_title("Feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    residents = read("residents")
    records = read("elderly_care_records")
    visits = records.groupby("resident_id").size()
    print(f"read {len(residents)} residents and {len(records)} service records")
    x, y = features(residents, visits)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED)
    model = RandomForestRegressor(n_estimators=60, max_depth=8, min_samples_leaf=10, random_state=SEED, n_jobs=1)
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "model": "RandomForestRegressor",
        "target": "service visits per resident",
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        "mae": round(float(mean_absolute_error(y_test, predicted)), 4),
        "r2": round(float(r2_score(y_test, predicted)) if len(y_test) > 1 else 0.0, 4),
        "features": list(x.columns),
    }
    OUTBOX.mkdir(parents=True, exist_ok=True)
    (OUTBOX / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    print(f"test MAE {metrics['mae']}, R2 {metrics['r2']}")

    table = pd.DataFrame({
        "age_band": age_band(x["age"]),
        "lives_alone": x["lives_alone"],
        "visits": y,
        "predicted": model.predict(x),
    })
    cells = table.groupby(["age_band", "lives_alone"], observed=True).agg(
        residents=("visits", "size"), mean_visits=("visits", "mean"), mean_predicted=("predicted", "mean")
    ).reset_index()
    kept = cells[cells["residents"] >= MIN_CELL].round(3)
    kept.to_csv(OUTBOX / "metrics_table.csv", index=False)
    print(f"aggregate table: {len(kept)} cells kept, {len(cells) - len(kept)} suppressed (< {MIN_CELL})")

    order = np.argsort(model.feature_importances_)[::-1][:12]
    names = [str(x.columns[i]) for i in order]
    values = [float(model.feature_importances_[i]) for i in order]
    write_svg(names, values, OUTBOX / "feature_importance.svg")
    maybe_png(names, values, OUTBOX / "feature_importance.png")
    joblib.dump(model, OUTBOX / "model.joblib")
    print("model saved to the outbox (it stays in the lab)")


if __name__ == "__main__":
    main()
