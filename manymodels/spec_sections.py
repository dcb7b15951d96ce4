"""The spec's sections: one validated, frozen model per table of the TOML (``[validation]``,
``[[candidates]]``, ``[selection]``, ``[decision]``, …). ``manymodels.spec.Spec`` composes them
and re-exports every name, so ``manymodels.spec.Selection`` keeps working; this module holds
them so that the spec's own module holds the fields and what they derive. The sections that
shape a served answer (``[decision]``, ``[calibration]``, ``[intervals]``) are in
``spec_answers``, and their shared base in ``spec_base``; both are re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from manymodels.exceptions import first_line
from manymodels.spec_answers import (  # noqa: F401 (re-exported: manymodels.spec_sections.FRACTION, …)
    FRACTION,
    Calibration,
    Cost,
    Decision,
    Intervals,
)
from manymodels.spec_base import _Frozen

MAX_LAG = 1000


class Validation(_Frozen):
    """How each partition's rows are split to compare candidates.

    ``last`` keeps the time order (the last ``size`` rows validate), ``holdout`` shuffles with
    the spec's seed, ``kfold`` averages ``folds`` folds (expanding folds with a time column).
    ``size`` is a row count when ≥ 1 and a fraction when < 1; with ``kfold`` and a time column
    a row count sizes each expanding fold (the forecast horizon, say), and a fraction other
    than the default is refused (the default, or none, splits the rows evenly).
    """

    strategy: Literal["last", "holdout", "kfold"] | None = None
    size: Annotated[float, Field(gt=0)] = 0.2
    folds: Annotated[int, Field(ge=2, le=20)] = 5
    step_size: Annotated[int, Field(ge=1)] | None = None
    """With ``kfold`` folds of ``size`` rows over a time column: how many periods apart the
    folds' origins are, as statsforecast's and mlforecast's ``cross_validation(step_size=…)``.
    ``None`` (the default) is ``size``: disjoint folds, the last ``folds × size`` rows each
    validated once. A smaller step gives a short series more validation forecasts than
    disjoint folds leave room for (Cigar's 30 years: 2 folds of 5 disjoint, 4 origins one
    year apart), at the cost of folds that overlap: each fold's errors are still forecasts of
    steps 1 … ``size`` from its own origin, and the held-out choice behind each fold's
    interval errors is made on folds that share none of its rows (``training.heldout``).
    Each fold is one more fit of every candidate, local and global."""
    global_refit: bool | int = True
    """How often a global candidate is refitted across the ``kfold`` folds, as mlforecast's
    ``cross_validation(refit=…)``: ``true`` on every fold, ``false`` once on the rows before
    the first fold (that model predicts every fold, as mlforecast's conformal windows do), an
    integer ``k`` every ``k`` folds. Each global fit is a model over every partition's rows,
    so ``false`` cuts a run's global fits from ``folds + 1`` to 2; the folds after the first
    are then judged with a model that has not seen the latest rows, a little pessimistic.
    Local candidates are refitted on every fold: one partition's fits are cheap."""
    global_refit_last: Annotated[int, Field(ge=0, le=20)] = 0
    """With ``global_refit`` ``false`` or ``k``: the last this many folds get a global fit
    each all the same, so the folds nearest the forecast judge the global candidate on a
    model that saw every row before them, as they judge the local ones; the earlier folds
    share their fits as ``global_refit`` says. ``global_refit = false`` with
    ``global_refit_last = 1`` is 3 global fits instead of ``folds + 1`` (the first fold's,
    the last fold's and the refit), and a panel with 2 folds keeps both of its fits: what
    ``false`` alone lost in accuracy where series are short (``benchmarks/HISTORY.md``,
    #12's nineteenth pass). ``0`` (the default) leaves ``global_refit`` as it is."""

    @field_validator("global_refit", mode="before")
    @classmethod
    def _refit_every(cls, v: Any) -> bool | int:
        if isinstance(v, bool) or (isinstance(v, int) and v > 1):
            return v
        if isinstance(v, int) and v == 1:
            return True  # a fit every fold: the default, whatever the spelling
        raise ValueError(f"must be true, false or a number of folds ≥ 1 (got {v!r})")

    @field_validator("global_refit_last", mode="before")
    @classmethod
    def _a_count(cls, v: Any) -> Any:
        if isinstance(v, bool):  # pydantic takes true for 1
            raise ValueError(f"must be a number of folds ≥ 0 (got {v!r})")
        return v

    @field_validator("size")
    @classmethod
    def _whole_rows(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError("a size of 1 or more is a row count and must be a whole number")
        return v


class Candidate(_Frozen):
    """One estimator family to try, with its parameter grid.

    ``estimator`` is either a class by dotted path (``sklearn.linear_model.Ridge``) or a factory
    ``package.module:function`` returning any estimator or Pipeline. Every combination in ``params``
    (scalars are grids of one) is fitted and scored per partition.
    """

    estimator: str
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    scale: bool = False
    scope: Literal["local", "global"] = "local"
    """``local``: fitted per partition on its own rows. ``global``: fitted once per run on every
    partition's training rows, the ``partition_by`` columns as categorical features
    (``manymodels.training.global_fit``), and chosen per partition like any other candidate."""

    @field_validator("estimator")
    @classmethod
    def _importable(cls, v: str) -> str:
        from manymodels.candidates import check_estimator_path

        try:
            check_estimator_path(v)
        except ValueError as e:
            raise ValueError(_one_line(e)) from None
        except Exception as e:  # a module that fails to import, a broken __getattr__…
            raise ValueError(f"cannot use '{v}': {_one_line(e)}") from None
        return v

    @field_validator("params")
    @classmethod
    def _grids_are_lists(cls, v: dict[str, Any]) -> dict[str, Any]:
        # numpy numbers and arrays (a notebook's grid) as plain values: the spec's hash is
        # its JSON form, and failed in ``train`` after the registry was made
        from manymodels.spec_params import plain_grid

        return plain_grid(v)

    @model_validator(mode="after")
    def _params_fit_estimator(self) -> Candidate:
        # Imported here: resolving the path imports scikit-learn, which spec.py otherwise avoids.
        from manymodels.candidates import check_params

        try:
            check_params(self)
        except Exception as e:  # any failure to build the estimator is the spec's problem
            raise ValueError(f"params: {_one_line(e)}") from None
        return self

    @property
    def label(self) -> str:
        """A short readable name for tables and logs."""
        return self.name or self.estimator.replace(":", ".").rsplit(".", 1)[-1]

    @property
    def is_factory(self) -> bool:
        return ":" in self.estimator


class Rolling(_Frozen):
    """A rolling statistic of the target as a feature: ``stat`` over the ``window`` targets
    ending ``lag`` rows earlier (the window slides over the series already shifted by the lag,
    as mlforecast's ``lag_transforms``), named ``<target>_roll_<stat>_lag<lag>_w<window>``."""

    lag: Annotated[int, Field(strict=True, ge=1, le=MAX_LAG)]
    window: Annotated[int, Field(strict=True, ge=1, le=MAX_LAG)]
    stat: Literal["mean", "std", "min", "max"] = "mean"

    @model_validator(mode="after")
    def _std_needs_two(self) -> Rolling:
        if self.stat == "std" and self.window < 2:
            raise ValueError("a rolling std needs a window of at least 2")
        return self


class Fallback(_Frozen):
    """One global model over all partitions, for unknown keys and partitions below ``min_rows``."""

    enabled: bool = True
    max_rows: Annotated[int, Field(ge=10)] = 1_000_000


class Promotion(_Frozen):
    """When a retrained version replaces production: always, only if better, or by hand."""

    policy: Literal["always", "if_better", "manual"] = "if_better"
    min_improvement: Annotated[float, Field(ge=0)] = 0.0


class Schedule(_Frozen):
    """When ``manymodels scheduler`` retrains: a cron expression in ``timezone``.

    Five fields (``minute hour day month day_of_week``, ``"0 3 * * mon"``: Mondays at 03:00)
    or six with seconds first; checked here when the scheduler's library is installed, else
    when ``manymodels scheduler`` starts. Each firing trains the spec on its data again, the
    partitions ``when`` names: ``changed`` (the default: those whose data changed, as
    ``train --changed-only``), ``all``, or any of the monitor's ``drifted``, ``stale``,
    ``degraded`` (as ``retrain --when``, with its default thresholds).
    """

    cron: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: str = "UTC"
    when: Annotated[
        list[Literal["changed", "all", "drifted", "stale", "degraded"]], Field(min_length=1)
    ] = ["changed"]  # noqa: RUF012 (a pydantic field, copied per model: ruff sees no BaseModel)

    @model_validator(mode="after")
    def _parses(self) -> Schedule:
        from manymodels.schedule import check_schedule

        check_schedule(self.cron, self.timezone)
        twice = sorted({w for w in self.when if self.when.count(w) > 1})
        if twice:  # ["changed", "changed"] read as neither "changed" alone nor a signal
            raise ValueError(f"when: '{twice[0]}' is given more than once")
        alone = {"changed", "all"} & set(self.when)
        if alone and len(set(self.when)) > 1:
            raise ValueError(f"when: '{sorted(alone)[0]}' stands alone")
        return self


class Artifacts(_Frozen):
    """How trained models are stored (``manymodels.serialization``).

    ``pickle`` (the default) is fast, but loading a pickle runs whatever code its bytes name.
    ``skops`` stores the model as data and loads it only when every type in it is on an
    explicit list (scikit-learn's estimators and manymodels' own), so a shared store can be
    read by a process that must not run code from it. It needs ``pip install
    'manymodels[skops]'``, and costs a few milliseconds per model to store and to load.
    """

    format: Literal["pickle", "skops"] = "pickle"

    @model_validator(mode="after")
    def _installed(self) -> Artifacts:
        if self.format == "skops":
            from manymodels.serialization import require_skops

            require_skops()
        return self


class Selection(_Frozen):
    """What a partition's production model is chosen from, besides the candidates.

    ``naive_candidate`` makes the naive baseline (last value with a time column, else the
    mean; the majority class for classification) a candidate like any other: a partition whose
    candidates all score worse than it by ``naive_margin`` on its validation rows serves the
    naive model; its score is recorded either way, as the baseline of every version's skill.
    """

    naive_candidate: bool = True
    naive_margin: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """How much better than the best fitted candidate the naive baseline must score on the
    validation folds to be served, as a fraction of that candidate's score (with an error
    metric: 0.1 = an error at least 10 % lower). Naive's forecast rests on one value, the last,
    so its fold scores swing more than a fitted model's; a narrow win is more often luck than
    skill (benchmarks/HISTORY.md, #12's selection margins). 0: strictly better wins. Naive is scored
    either way. Regression only: a classifier's naive is the smoothed constant, the steadier model
    of the two on a few validation rows (#18), and wins when strictly better."""
    global_margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """How much better a local candidate (or the ``top2`` mean) must score than the best
    ``scope = "global"`` candidate to be served instead of it, as a fraction of the global
    one's score. 0: the best score wins; > 0 prefers the model fitted on every partition."""
    transform_margin: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """With several ``target_transform`` listed, how much better than the first one's model
    another transform's must score on the validation folds to be served, as a fraction of the
    first one's score. A model of changes forecasts from one value, the last, as naive does,
    so its fold scores swing as much: on the daily flight delays of benchmarks/HISTORY.md
    (#12's seventh pass), four series whose changes won by 2–9 % on validation lost by 3–5× on
    the next fortnight. 0: the best score wins."""
    ensemble: Literal["none", "top2"] = "none"
    """``top2``: the mean of the two best models' predictions competes too, per partition."""
    fallback_metric: Literal["log_loss", "brier", "accuracy"] = "log_loss"
    """Classification: what decides a partition whose validation rows hold one class, where
    the spec's ``metric`` (``roc_auc``, ``f1``… anything but ``accuracy``) is undefined. The
    version records the metric that decided (``neg_log_loss``, ``neg_brier_score``)."""
    prior_rows: Annotated[float, Field(ge=0)] | Literal["auto"] = "auto"
    """Classification: a constant model (a partition whose training rows hold one class, one
    with too few rows, the naive candidate) serves ``(k + m·p) / (n + m)`` — its ``k`` rows of
    a class out of ``n``, smoothed toward that class's rate ``p`` over the whole table with
    ``m = prior_rows`` pseudo-rows. ``"auto"``: ``m`` estimated from how much the partitions'
    class rates vary beyond chance (empirical Bayes, ``manymodels.classes.prior_strength``);
    of three or more classes one ``m`` per class (``class_strengths``), the smoothed rates
    renormalised, so a rare class some partitions favour is not drowned by the common ones."""
    min_class_rows: Annotated[int, Field(ge=1)] = 5
    """Classification: a ranking or threshold metric (``roc_auc``, ``average_precision``,
    ``f1``…) decides a partition only where each validation window holds at least this many
    rows of every class; elsewhere ``fallback_metric`` does (a proper scoring rule stays
    meaningful on a few rows; a ranking of 10 rows with one positive is noise). 1: only where
    the metric is defined."""
    too_few_rows: Literal["auto", "constant", "fallback"] = "auto"
    """A partition with fewer than ``min_rows`` rows: ``"constant"`` gives it a version of its
    own, constant probabilities smoothed as above (classification only); ``"fallback"`` skips
    it and the fallback model serves it. ``"auto"``: for classification a version of its own,
    with ``prior_shifted`` the spec's global classifier shifted to those smoothed rates where
    it has one (``manymodels.prior_shift``: the constant is its special case), else the
    constant; fallback for regression."""
    prior_shifted: bool = False
    """Classification with a ``scope = "global"`` classifier: offer each partition that model
    shifted to its own smoothed class rates (``manymodels.prior_shift``), and serve it to the
    partitions below ``min_rows`` (with ``too_few_rows = "auto"``). Off unless asked for. The
    shift divides by the model's own mean prediction for the partition, so a global model
    holding the key (a user one-hot, a LightGBM category, as global candidates are by
    default) no longer counts the rate it learnt twice (visits panel, 2,000 users: median log
    loss 0.620 with the user one-hot, 0.621 pooled, against 0.663 / 0.664 without the shift
    and the fallback's 0.628; benchmarks/README.md, h125). Off by default all the same: on the
    binary aircraft panel a key-aware global LogisticRegression loses the median with it
    (0.166 against 0.163 off; users 0.381 against 0.382; h128), its partitions choosing the
    shifted model on ~10 validation rows."""


def _one_line(error: BaseException) -> str:
    if not str(error).strip():
        return type(error).__name__
    first = first_line(error)
    return first if isinstance(error, ValueError) else f"{type(error).__name__}: {first}"
