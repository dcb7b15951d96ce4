"""The spec's sections that shape what a served prediction carries besides its value:
``[decision]`` (a classifier's label threshold, with its ``cost``), ``[calibration]``
(calibrated probabilities) and ``[intervals]`` (conformal bands around a regression's).

Apart from ``spec_sections`` because each is read by one part of training and serving
(``training.classify``, ``intervals``), not by the fan-out that fits the candidates.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from manymodels.spec_base import _Frozen


class Cost(_Frozen):
    """What one wrong label costs: a false positive and a false negative."""

    fp: Annotated[float, Field(gt=0)] = 1.0
    fn: Annotated[float, Field(gt=0)] = 1.0


class Decision(_Frozen):
    """How a binary classifier's probability becomes a label, per partition.

    ``threshold = "f1"`` picks the threshold maximising F1 on the partition's validation rows,
    ``"cost"`` the one minimising ``cost.fp · FP + cost.fn · FN``. A partition with fewer than
    ``min_positives`` positive validation rows (or a constant model) takes the global threshold
    instead: ``fp / (fp + fn)`` for ``cost`` (the Bayes threshold of calibrated probabilities)
    and ``p / (1 + p)`` for ``f1``, ``p`` the table's positive rate (the F1-optimal threshold of
    a calibrated model that knows only the base rate: half its F1). The positive class is
    ``positive``, by default the greater of the two (``1``, ``True``, ``"yes"`` over ``"no"``;
    but ``"ok"`` over ``"fraud"``: name it). ``positive`` is also the class the spec's ``f1``,
    ``precision``, ``recall``, ``jaccard`` and ``average_precision`` count (scikit-learn's
    ``pos_label``), so a table of text labels can be chosen by them; it is recorded with the
    threshold, so every label (the router's, ``--threshold``) counts the same class.
    """

    threshold: Literal["f1", "cost"]
    cost: Cost = Field(default_factory=Cost)
    min_positives: Annotated[int, Field(ge=1)] = 5
    positive: StrictBool | StrictInt | StrictFloat | StrictStr | None = None

    @field_validator("positive", mode="before")
    @classmethod
    def _dates_as_text(cls, v: object) -> object:
        """A TOML date or time (``positive = 2024-01-01``: ``tomllib`` gives a
        ``datetime.date``) as its ISO text, which is matched to the date classes by value
        (``manymodels.label_matching``); it was refused as "not true or false … or text"."""
        return v.isoformat() if isinstance(v, date) else v


class Calibration(_Frozen):
    """Calibrated probabilities per partition: the chosen candidate wrapped in scikit-learn's
    ``CalibratedClassifierCV`` (``sigmoid`` or ``isotonic``, ``folds`` stratified folds) where
    the partition has at least ``min_rows_per_class`` rows of each class; elsewhere it serves
    as fitted, and its version says why (``validation.calibration``)."""

    method: Literal["sigmoid", "isotonic"]
    folds: Annotated[int, Field(ge=2, le=10)] = 3
    min_rows_per_class: Annotated[int, Field(ge=2)] = 10

    @model_validator(mode="after")
    def _enough_rows_for_folds(self) -> Calibration:
        if self.min_rows_per_class < self.folds:
            raise ValueError("min_rows_per_class must be at least folds (each fold needs a row)")
        return self


FRACTION = (
    "{0:.10g} is not a coverage in percent above 1: levels are percentages (80 for an 80 % "
    "interval, not 0.8)"
)


class Intervals(_Frozen):
    """Conformal prediction intervals (``manymodels.intervals``), regression only: each
    version records, per level, a quantile of its validation rows' absolute errors, and
    ``forecast``, ``score`` and the router (``?levels=``) answer ``lo-<level>`` /
    ``hi-<level>`` beside each prediction. ``levels`` are coverages in percent, e.g. ``[80, 95]``.

    ``pool_partitions``: a partition's band is its own mean absolute error times a quantile of
    every partition's errors, each divided by the mean of its partition's other errors
    (``manymodels.interval_pool``): where each partition has few validation errors (the 95 %
    rank needs 19), the shape of the errors is learnt from all of them and only their scale
    from the partition's own.
    """

    levels: Annotated[list[float], Field(min_length=1, max_length=10)]
    pool_partitions: bool = False

    @field_validator("levels")
    @classmethod
    def _percentages(cls, v: list[float], info: ValidationInfo) -> list[float]:
        bad = [lv for lv in v if not 0 < lv < 100]
        if bad:
            raise ValueError(f"{bad[0]:g} is not a coverage in percent (between 0 and 100)")
        fractions = [lv for lv in v if lv <= 1]  # 0.8 meant 80: a 0.8 % band is no one's aim
        if fractions and not (info.context or {}).get("stored"):  # what was trained, retrains
            raise ValueError(FRACTION.format(fractions[0]))
        if len(set(v)) != len(v):
            raise ValueError("lists a level twice")
        rounded = [lv for lv in v if not 0 < float(f"{lv:g}") < 100]
        if rounded:
            raise ValueError(
                f"{rounded[0]!r} would be named {rounded[0]:g}% (lo-/hi- columns keep 6 "
                "significant digits): give at most 6 significant digits"
            )
        named: dict[str, float] = {}
        for lv in v:  # its columns are lo-<level:g>: two levels must not share them
            if f"{lv:g}" in named:
                raise ValueError(
                    f"{named[f'{lv:g}']!r} and {lv!r} would both write the columns lo-{lv:g} "
                    f"and hi-{lv:g}: give levels that differ within 6 significant digits"
                )
            named[f"{lv:g}"] = lv
        return sorted(v)
