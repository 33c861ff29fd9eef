"""Elderly-care demand model (养老服务需求模型): how many home-care services will a resident use?

Reads the residents register and the home-care service records of the county, trains a
random-forest regressor that predicts each older resident's number of service visits from
age, living alone, gender, income and town, and writes to the outbox:

- metrics.json            test-set error and sizes (no rows)
- metrics_table.csv       residents, mean visits and mean prediction per age band x living alone
- visits_by_age.csv       residents and mean visits per age band
- visits_by_age.svg       a bar chart drawn from visits_by_age.csv
- feature_importance.csv  the model's feature importances (with the training size)
- feature_importance.svg  a bar chart drawn from feature_importance.csv
- model.joblib            the fitted model; it stays in the lab for the model registry

Every releasable file is written by the lab's output library (countylab.output), which puts a
metadata sidecar next to it: the airlock then knows which column is a count and how many
residents stand behind each cell, and checks the tables automatically.  A file written any
other way is free-form: a checker has to read it whole.

Paths are the sandbox's: /data/<dataset>/*.parquet and /outbox.  Without the sandbox
(``countylab run`` on a machine with no bubblewrap) COUNTYLAB_DATA / COUNTYLAB_OUTBOX say where.
Never print rows or identifiers: logs are outputs and are checked like any other.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from countylab.output import Outputs

DATA = Path(os.environ.get("COUNTYLAB_DATA", "/data"))
OUTBOX = Path(os.environ.get("COUNTYLAB_OUTBOX", "/outbox"))
MIN_CELL = 10  # the lab's SDC threshold: smaller cells are not written
SEED = 2026
# The model takes the residents register's own columns: the feature steps live inside it (a
# scikit-learn Pipeline), so the served model is called with these columns and the lab's
# memorisation tests can call it on real rows before a checker approves it.
INPUTS = ["age", "lives_alone", "gender", "income", "town_code"]


def read(name: str) -> pd.DataFrame:
    files = sorted((DATA / name).glob("*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {DATA / name}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def features(residents: pd.DataFrame, visits: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    older = residents[residents["age"] >= 60]
    if len(older) < 30:  # tiny dummy data: use everyone rather than fail
        older = residents
    x = older[INPUTS].reset_index(drop=True)
    y = older["resident_id"].map(visits).fillna(0).astype(float).reset_index(drop=True)
    return x, y


def demand_model() -> Pipeline:
    """Raw columns in, visits out: numbers (as floats) imputed, categories (as text) one-hot encoded."""
    categories = Pipeline([
        ("text", FunctionTransformer(np.asarray, kw_args={"dtype": str}, feature_names_out="one-to-one")),
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
    ])
    numbers = Pipeline([
        ("float", FunctionTransformer(np.asarray, kw_args={"dtype": float}, feature_names_out="one-to-one")),
        ("fill", SimpleImputer(strategy="constant", fill_value=0.0)),
    ])
    prepare = ColumnTransformer([
        ("numbers", numbers, ["age", "income"]),
        ("categories", categories, ["lives_alone", "gender", "town_code"]),
    ])
    forest = RandomForestRegressor(n_estimators=60, max_depth=8, min_samples_leaf=10, random_state=SEED, n_jobs=1)
    return Pipeline([("prepare", prepare), ("forest", forest)])


def age_band(age: pd.Series) -> pd.Series:
    return pd.cut(age, [0, 60, 70, 80, 200], right=False, labels=["<60", "60-69", "70-79", "80+"]).astype(str)


def main() -> None:
    residents = read("residents")
    records = read("elderly_care_records")
    visits = records.groupby("resident_id").size()
    print(f"read {len(residents)} residents and {len(records)} service records")
    x, y = features(residents, visits)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=SEED)
    model = demand_model()
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    out = Outputs(OUTBOX)
    out.metrics(
        "metrics.json",
        {
            "n_train": len(x_train),
            "n_test": len(x_test),
            "mae": float(mean_absolute_error(y_test, predicted)),
            "r2": float(r2_score(y_test, predicted)) if len(y_test) > 1 else 0.0,
        },
        n_obs=len(x_test),
    )
    print(f"test MAE {mean_absolute_error(y_test, predicted):.4f}")

    table = pd.DataFrame({
        "age_band": age_band(x["age"].astype(float)),
        "lives_alone": x["lives_alone"].fillna(False).astype(bool).astype(int),
        "visits": y,
        "predicted": model.predict(x),
    })
    # Groups under the threshold are left out before tabulating (the airlock would refuse
    # them), and every other table is made from the same rows, so no total gives them away.
    sizes = table.groupby(["age_band", "lives_alone"], observed=True)["visits"].transform("size")
    kept = table[sizes >= MIN_CELL]
    groups = ["age_band", "lives_alone"]
    out.pivot_table("metrics_table.csv", kept, groups, ["visits", "predicted"], count_column="residents")
    out.pivot_table("visits_by_age.csv", kept, "age_band", "visits", count_column="residents")
    out.bar_chart("visits_by_age.svg", "visits_by_age.csv", label="age_band", value="mean_visits",
                  title="Mean service visits by age band")
    print(f"aggregate tables written: {len(out.written)} outputs so far")

    forest = model.named_steps["forest"]
    names = model.named_steps["prepare"].get_feature_names_out()
    order = np.argsort(forest.feature_importances_)[::-1][:12]
    importances = {str(names[i]).split("__")[-1]: float(forest.feature_importances_[i]) for i in order}
    out.model_summary("feature_importance.csv", importances, n_obs=len(x_train), label="feature",
                      value="importance")
    out.bar_chart("feature_importance.svg", "feature_importance.csv", label="feature", value="importance",
                  title="Feature importance")
    joblib.dump(model, OUTBOX / "model.joblib")
    print("model saved to the outbox (it stays in the lab)")


if __name__ == "__main__":
    main()
