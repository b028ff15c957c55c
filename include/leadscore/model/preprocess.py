"""Feature preprocessing shared by the Cox model and the logistic challenger.

The preprocessing is fitted on the training block and stored inside the model object, so scoring applies exactly the
transformation the model was fitted with. Counts are log1p-transformed and standardized; flags stay 0/1; categoricals
are one-hot encoded against their most frequent level (the reference level of hazard ratios), rare levels pooled as
"Other" and missing values as "(missing)".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_CATEGORICAL, FEATURE_COLUMNS, FEATURE_FLAGS, FEATURE_NUMERIC


class ModelSignatureError(ValueError):
    """The feature frame given to a model lacks columns, has extra columns or has columns of the wrong kind."""


# Rates are already in [0, 1]; every other numeric feature is a count or a number of days with a long right tail.
LINEAR_SCALE: frozenset[str] = frozenset({"email_open_rate", "email_click_rate"})
OTHER_LEVEL = "Other"
MISSING_LEVEL = "(missing)"


def check_feature_frame(features: pd.DataFrame, columns: list[str] | None = None) -> None:
    """Check that ``features`` holds exactly the model's feature columns with usable dtypes.

    Args:
        features: the frame to score; extra non-feature columns are reported, not ignored.
        columns: the expected columns (default ``FEATURE_COLUMNS``).
    Raises:
        ModelSignatureError: naming the missing and extra columns and any numeric column with a non-numeric dtype.
    """
    expected = list(FEATURE_COLUMNS) if columns is None else columns
    present = set(features.columns)
    missing = [c for c in expected if c not in present]
    extra = [c for c in features.columns if c not in set(expected)]
    problems: list[str] = []
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    numeric = [c for c in (*FEATURE_NUMERIC, *FEATURE_FLAGS) if c in present and c in expected]
    bad = {c: str(features[c].dtype) for c in numeric if not pd.api.types.is_numeric_dtype(features[c].dtype)}
    if bad:
        problems.append(f"numeric columns with non-numeric dtypes {bad}")
    if problems:
        raise ModelSignatureError(
            "feature frame does not match the model's signature: "
            + "; ".join(problems)
            + f" (expected the {len(expected)} columns of leadscore.data.tables.FEATURE_COLUMNS)"
        )


def numeric_matrix(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The given numeric columns as a float64 array.

    Raises:
        ValueError: a column holds missing values (the feature layer encodes missingness as flags, so NaN is a bug
            upstream, not something to impute silently).
    """
    values = features[columns].to_numpy(dtype="float64", na_value=np.nan, copy=True)
    if np.isnan(values).any():
        counts = dict(zip(columns, np.isnan(values).sum(axis=0).tolist(), strict=True))
        counts = {k: v for k, v in counts.items() if v}
        raise ValueError(f"feature columns hold missing values (rows per column: {counts}); fix the feature build")
    return values


def categorical_values(series: pd.Series) -> np.ndarray:
    """A categorical column as an object array of strings, missing values as ``MISSING_LEVEL``."""
    return series.astype("object").where(series.notna(), MISSING_LEVEL).astype(str).to_numpy(dtype=object)


@dataclass
class Preprocessor:
    """Fitted transformation from the feature frame to a dense design matrix.

    Attributes:
        numeric: numeric columns, transformed then standardized.
        flags: 0/1 columns, kept as they are.
        levels: per categorical column, the kept levels; the first one is the reference (no dummy column).
        means, scales: standardization of the transformed numeric columns.
        design_columns: names of the design-matrix columns; ``groups`` maps each to its original feature.
        constant: numeric and flag columns that did not vary in training; left out of the design (no information, and
            a constant column breaks the Cox fit).
    """

    min_level_share: float = 0.01
    numeric: list[str] = field(default_factory=lambda: list(FEATURE_NUMERIC))
    flags: list[str] = field(default_factory=lambda: list(FEATURE_FLAGS))
    categorical: list[str] = field(default_factory=lambda: list(FEATURE_CATEGORICAL))
    levels: dict[str, list[str]] = field(default_factory=dict)
    means: np.ndarray | None = None
    scales: np.ndarray | None = None
    design_columns: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    constant: list[str] = field(default_factory=list)
    _keep: np.ndarray | None = None

    def _transform_numeric(self, features: pd.DataFrame) -> np.ndarray:
        values = numeric_matrix(features, self.numeric)
        log_cols = np.array([c not in LINEAR_SCALE for c in self.numeric])
        # Negative counts would be data errors; clip so log1p stays defined and the error cannot explode a score.
        values[:, log_cols] = np.log1p(np.clip(values[:, log_cols], 0.0, None))
        return values

    def fit(self, features: pd.DataFrame) -> Preprocessor:
        """Learn levels and standardization from the training rows; returns self."""
        raw = self._transform_numeric(features)
        self.means = raw.mean(axis=0)
        scales = raw.std(axis=0)
        self.scales = np.where(scales > 1e-12, scales, 1.0)
        flag_values = numeric_matrix(features, self.flags)
        varies = np.concatenate([scales > 1e-12, flag_values.std(axis=0) > 1e-12])
        self._keep = np.flatnonzero(varies)
        plain = [*self.numeric, *self.flags]
        self.constant = [c for c, v in zip(plain, varies, strict=True) if not v]
        self.levels = {}
        for col in self.categorical:
            counts = pd.Series(categorical_values(features[col])).value_counts()
            share = counts / counts.sum()
            kept = [str(v) for v in share.index[share >= self.min_level_share]]
            if (share < self.min_level_share).any():
                kept.append(OTHER_LEVEL)
            self.levels[col] = kept
        self.design_columns = [plain[i] for i in self._keep]
        self.groups = list(self.design_columns)
        for col in self.categorical:
            for level in self.levels[col][1:]:
                self.design_columns.append(f"{col}={level}")
                self.groups.append(col)
        return self

    def map_levels(self, features: pd.DataFrame, col: str) -> np.ndarray:
        """The column's values with unseen or rare levels mapped to ``OTHER_LEVEL`` (or the reference if no Other)."""
        values = categorical_values(features[col])
        kept = self.levels[col]
        fallback = OTHER_LEVEL if OTHER_LEVEL in kept else kept[0]
        return np.where(pd.Series(values).isin(kept).to_numpy(), values, fallback)

    def tree_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The input of the tree models: numbers as float, categoricals as pandas categories with the training levels."""
        numeric = [*FEATURE_NUMERIC, *FEATURE_FLAGS]
        out = pd.DataFrame(numeric_matrix(features, numeric), columns=numeric, index=features.index)
        for col in FEATURE_CATEGORICAL:
            out[col] = pd.Categorical(self.map_levels(features, col), categories=self.levels[col])
        return out

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """The design matrix (rows × ``design_columns``) of ``features``."""
        if self.means is None or self.scales is None or self._keep is None:
            raise RuntimeError("Preprocessor.transform called before fit")
        plain = np.hstack(
            [(self._transform_numeric(features) - self.means) / self.scales, numeric_matrix(features, self.flags)]
        )
        blocks = [plain[:, self._keep]]
        for col in self.categorical:
            mapped = self.map_levels(features, col)
            levels = self.levels[col][1:]
            if levels:
                blocks.append((mapped[:, None] == np.array(levels, dtype=object)[None, :]).astype("float64"))
        return np.hstack(blocks)


def linear_contributions(pre: Preprocessor, centered: np.ndarray, beta: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Sum ``beta_j * centered_j`` over the design columns of each original feature.

    Args:
        pre: the fitted preprocessing (its ``groups`` name each design column's feature).
        centered: design matrix minus the training mean; beta: coefficients; index: the rows' index.
    Returns:
        A frame (rows × original feature columns in FEATURE_COLUMNS order; constant features give 0).
    """
    terms = centered * beta[None, :]
    groups = np.array(pre.groups, dtype=object)
    out = {}
    for col in FEATURE_COLUMNS:
        sel = groups == col
        out[col] = terms[:, sel].sum(axis=1) if sel.any() else np.zeros(len(index))
    return pd.DataFrame(out, index=index)
