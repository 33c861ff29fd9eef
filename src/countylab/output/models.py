"""Regression summaries: coefficient tables of OLS and logistic regressions.

Only the summary leaves, never the fitted model: one row per term (coefficient, standard
error, test statistic, p-value) and the number of observations on every row, so the lab can
check the observation count and the residual degrees of freedom from the table alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

Built = tuple[list[str], list[list[Any]], dict[str, Any]]


def _design(df: pd.DataFrame, y: str, x: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    frame = df[[y, *x]].dropna()
    design = pd.get_dummies(frame[list(x)], drop_first=True, dtype=float)
    terms = ["const", *[str(c) for c in design.columns]]
    matrix = np.column_stack([np.ones(len(frame)), design.to_numpy(dtype=float)])
    return matrix, frame[y].to_numpy(dtype=float), terms


def _summary(terms: list[str], coef: np.ndarray, cov: np.ndarray, n: int, dist: str, dof: int) -> Built:
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(se > 0, coef / se, np.nan)
    p = 2 * stats.t.sf(np.abs(stat), max(dof, 1)) if dist == "t" else 2 * stats.norm.sf(np.abs(stat))
    name = "t" if dist == "t" else "z"
    header = ["term", "coef", "std_err", name, "p_value", "n_obs"]
    rows = [
        [t, float(c), float(s), float(z), float(pp), n]
        for t, c, s, z, pp in zip(terms, coef, se, stat, p, strict=True)
    ]
    meta_rows = [
        {"key": [t], "cells": {c: {"n": n} for c in ("coef", "std_err", name, "p_value", "n_obs")}}
        for t in terms
    ]
    sidecar = {
        "group_columns": ["term"],
        "count_columns": ["n_obs"],
        "statistic_columns": ["coef", "std_err", name, "p_value"],
        "rows": meta_rows,
        "n_obs": n,
        "df_resid": n - len(terms),
    }
    return header, rows, sidecar


def ols(df: pd.DataFrame, y: str, x: Sequence[str]) -> Built:
    """Ordinary least squares with an intercept; categorical predictors become dummies."""
    matrix, target, terms = _design(df, y, x)
    n, k = matrix.shape
    coef, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    resid = target - matrix @ coef
    sigma2 = float(resid @ resid) / max(n - k, 1)
    cov = sigma2 * np.linalg.pinv(matrix.T @ matrix)
    return _summary(terms, coef, cov, n, "t", n - k)


def logit(df: pd.DataFrame, y: str, x: Sequence[str]) -> Built:
    """Logistic regression (maximum likelihood, no penalty); standard errors from the
    observed information matrix."""
    from sklearn.linear_model import LogisticRegression

    matrix, target, terms = _design(df, y, x)
    if set(np.unique(target)) - {0.0, 1.0}:
        raise ValueError("logit needs a 0/1 outcome")
    model = LogisticRegression(C=np.inf, fit_intercept=False, max_iter=1000)
    model.fit(matrix, target.astype(int))
    coef = model.coef_[0]
    p = 1.0 / (1.0 + np.exp(-(matrix @ coef)))
    info = matrix.T @ (matrix * (p * (1 - p))[:, None])
    cov = np.linalg.pinv(info)
    n, k = matrix.shape
    return _summary(terms, coef, cov, n, "z", n - k)
