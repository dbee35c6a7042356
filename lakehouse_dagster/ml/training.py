"""Train a binary classifier on a time-based split, evaluate it, and promote it only if it
beats the champion on the same holdout. pandas and scikit-learn; no Spark, no Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lakehouse_dagster.ml.models import ModelStore, ModelVersion

#: The column that says which rows train and which are held out (the latest feature date).
SPLIT = "split"
TRAIN, HOLDOUT = "train", "holdout"
_CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ClassifierSpec:
    """A model of ``label`` (0/1) from numeric and categorical features: scaled numeric features and
    one-hot categories into a logistic regression (calibrated probabilities, fast, explainable)."""

    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    regularization: float = 1.0  # scikit-learn's C
    class_weight: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def params(self) -> dict[str, Any]:
        return {
            "algorithm": "logistic_regression",
            "C": self.regularization,
            "class_weight": self.class_weight or "none",
            "numeric_features": ",".join(self.numeric),
            "categorical_features": ",".join(self.categorical),
            "label": self.label,
        }


def fit(spec: ClassifierSpec, train: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if train[spec.label].nunique() < 2:
        raise ValueError(f"the training rows have one class of {spec.label} only: nothing to learn")
    steps = [("numeric", StandardScaler(), list(spec.numeric))]
    if spec.categorical:
        steps.append(("categorical", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical)))
    model = Pipeline(
        [
            ("features", ColumnTransformer(steps)),
            (
                "classifier",
                LogisticRegression(C=spec.regularization, class_weight=spec.class_weight, max_iter=2000),
            ),
        ]
    )
    return model.fit(features_of(spec, train), train[spec.label].astype(int))


def _input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input: numeric features as float64 (decimals too; a null becomes 0), categorical
    ones as text."""
    missing = [column for column in (*numeric, *categorical) if column not in frame.columns]
    if missing:
        raise ValueError(f"the feature rows lack column(s) {', '.join(missing)}")
    return pd.concat(
        [
            *(frame[c].astype("float64").fillna(0.0) for c in numeric),
            *(frame[c].astype("string").fillna("unknown").astype(object) for c in categorical),
        ],
        axis=1,
    )


def features_of(spec: ClassifierSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The input of a model of ``spec``."""
    return _input(frame, list(spec.numeric), list(spec.categorical))


def predict(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The probability of the label, one per row, from the features the model was trained on (a
    champion trained on other features than today's declaration still scores with its own)."""
    columns = {name: list(columns) for name, _, columns in model.named_steps["features"].transformers_}
    return model.predict_proba(_input(frame, columns.get("numeric", []), columns.get("categorical", [])))[
        :, 1
    ]


def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score, expected calibration error (ten equal-width
    bins) and the base rate."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        raise ValueError("the holdout has one class only: ROC AUC is undefined")
    bins = np.minimum((probabilities * _CALIBRATION_BINS).astype(int), _CALIBRATION_BINS - 1)
    gaps = [
        abs(probabilities[bins == b].mean() - labels[bins == b].mean()) * (bins == b).mean()
        for b in range(_CALIBRATION_BINS)
        if (bins == b).any()
    ]
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
        "calibration_error": float(sum(gaps)),
        "base_rate": float(labels.mean()),
    }


def calibration_table(labels: np.ndarray, probabilities: np.ndarray) -> list[dict[str, float]]:
    """Per bin of predicted probability: rows, mean prediction, observed rate (the reliability curve)."""
    labels = np.asarray(labels).astype(int)
    bins = np.minimum((probabilities * _CALIBRATION_BINS).astype(int), _CALIBRATION_BINS - 1)
    return [
        {
            "bin_low": b / _CALIBRATION_BINS,
            "rows": int((bins == b).sum()),
            "mean_predicted": float(probabilities[bins == b].mean()),
            "observed_rate": float(labels[bins == b].mean()),
        }
        for b in range(_CALIBRATION_BINS)
        if (bins == b).any()
    ]


@dataclass(frozen=True)
class TrainingOutcome:
    version: ModelVersion
    metrics: dict[str, float]
    #: The champion before this run, and its metrics on this run's holdout.
    previous_champion: ModelVersion | None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool = False
    reason: str = ""


def train_and_register(
    store: ModelStore,
    model_name: str,
    spec: ClassifierSpec,
    rows: pd.DataFrame,
    *,
    run_name: str,
    tags: dict[str, str],
    compare_on: str = "roc_auc",
) -> TrainingOutcome:
    """Fit on the ``train`` rows, evaluate on the ``holdout`` rows, log and register a version,
    and move ``champion`` to it only if it beats the current champion's ``compare_on`` on the same
    holdout (the first version always becomes champion)."""
    train, holdout = rows[rows[SPLIT] == TRAIN], rows[rows[SPLIT] == HOLDOUT]
    if train.empty or holdout.empty:
        raise ValueError(f"need training and holdout rows; got {len(train)} and {len(holdout)}")
    model = fit(spec, train)
    labels = holdout[spec.label].astype(int).to_numpy()
    probabilities = predict(model, holdout)
    metrics = evaluate(labels, probabilities)
    champion = store.champion(model_name)
    champion_metrics = evaluate(labels, predict(store.load(champion), holdout)) if champion else {}
    counts = {"training_rows": float(len(train)), "holdout_rows": float(len(holdout))}
    version = store.log_and_register(
        model_name,
        model,
        run_name=run_name,
        params=spec.params(),
        metrics={
            **metrics,
            **counts,
            **{f"champion_{key}": value for key, value in champion_metrics.items()},
        },
        features=spec.features,
        example=features_of(spec, holdout),
        tags=tags,
        documents={"calibration.json": calibration_table(labels, probabilities)},
    )
    if champion is None:
        promoted, reason = True, "the first version: no champion yet"
    elif metrics[compare_on] > champion_metrics[compare_on]:
        promoted = True
        reason = (
            f"{compare_on} {metrics[compare_on]:.4f} beats champion version {champion.version}'s "
            f"{champion_metrics[compare_on]:.4f} on the same holdout"
        )
    else:
        promoted = False
        reason = (
            f"kept champion version {champion.version}: its {compare_on} "
            f"{champion_metrics[compare_on]:.4f} on the same holdout is not below this version's "
            f"{metrics[compare_on]:.4f}"
        )
    if promoted:
        store.promote(version)
    return TrainingOutcome(version, {**metrics, **counts}, champion, champion_metrics, promoted, reason)
