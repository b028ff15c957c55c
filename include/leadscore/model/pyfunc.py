"""MLflow pyfunc wrapper of a LeadModel, so any MLflow client can load and score it (``models:/lead_propensity@champion``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_CATEGORICAL
from leadscore.model.lead_model import LeadModel

ARTIFACT_KEY = "lead_model"
OUTPUT_COLUMN = "p_apply"
# The package directory; logged as code so the model loads without our PYTHONPATH.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class LeadPropensityPyfunc(mlflow.pyfunc.PythonModel):
    """Holds a LeadModel (loaded from the ``lead_model`` artifact); ``predict`` returns a frame with ``p_apply``."""

    def __init__(self) -> None:
        self.lead_model: LeadModel | None = None

    def load_context(self, context: Any) -> None:
        """Load the pickled LeadModel from the model's artifacts."""
        self.lead_model = joblib.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """P(apply within H days) per input row, as a one-column frame ``p_apply``.

        Raises:
            RuntimeError: called before ``load_context``.
            ModelSignatureError: the input lacks feature columns.
        """
        if self.lead_model is None:
            raise RuntimeError("LeadPropensityPyfunc.predict called before load_context")
        return pd.DataFrame({OUTPUT_COLUMN: self.lead_model.predict_proba(model_input)}, index=model_input.index)


def signature_example(features: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A small input example with plain dtypes: numbers as float64 (so integer inputs are accepted by MLflow's safe
    int -> double conversion), categoricals as object strings with missing values as None."""
    example = features.head(rows).copy()
    for col in example.columns:
        if col in FEATURE_CATEGORICAL:
            example[col] = example[col].astype(object).where(example[col].notna(), None)
        else:
            example[col] = example[col].astype("float64")
    return example.reset_index(drop=True)


def pyfunc_input(features: pd.DataFrame) -> pd.DataFrame:
    """Cast a feature frame to the logged signature's types (float64 numbers, object strings).

    MLflow's schema enforcement refuses int64 -> double ("not safe"), so integer flag or count columns must be cast
    before calling a loaded pyfunc's ``predict``. ``LeadModel.predict_proba`` itself accepts any numeric dtype.
    """
    return signature_example(features, rows=len(features))


def log_pyfunc(model: LeadModel, example_features: pd.DataFrame, workdir: Path, registered_model_name: str | None):
    """Log ``model`` as a pyfunc in the active run (name ``model``), with signature, input example and code paths.

    Args:
        model: the LeadModel. example_features: rows of feature columns for the input example.
        workdir: a scratch directory for the pickled artifact. registered_model_name: register under this name.
    Returns:
        MLflow's ModelInfo (``registered_model_version`` set when registered).
    """
    from mlflow.models import infer_signature

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "lead_model.joblib"
    joblib.dump(model, path)
    example = signature_example(example_features[model.feature_columns])
    output = pd.DataFrame({OUTPUT_COLUMN: model.predict_proba(example).astype(np.float64)})
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=LeadPropensityPyfunc(),
        artifacts={ARTIFACT_KEY: str(path)},
        code_paths=[str(PACKAGE_DIR)],
        signature=infer_signature(example, output),
        input_example=example,
        registered_model_name=registered_model_name,
        pip_requirements=_requirements(),
    )


def _requirements() -> list[str]:
    import importlib.metadata as md

    names = ["mlflow", "pandas", "numpy", "scikit-learn", "lifelines", "lightgbm", "scipy", "joblib"]
    return [f"{n}=={md.version(n)}" for n in names]
