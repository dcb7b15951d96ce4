"""The spec: how a table becomes many models, declared once and validated up front.

A spec is written in TOML (see ``data-samples/*.toml``) or built in Python. Validation happens
here, before any data is read or Ray is started, so a typo costs a second and says where it is::

    spec = Spec.from_toml("store_sales.toml")
    spec = Spec(name="s", partition_by=["store"], target="units",
                candidates=[{"estimator": "sklearn.linear_model.Ridge"}])

Its ``spec_hash`` (sha256 of the canonical JSON form) is recorded with every run, so a registry
can always say which spec produced which model.

This module holds the fields and what they derive; the sections (``[validation]``, …) are in
``spec_sections``, the rules across fields in ``spec_rules``.
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from manymodels import holiday_file, spec_rules
from manymodels.exceptions import DataError, SpecError
from manymodels.feature_schema import TransformKind
from manymodels.spec_errors import describe
from manymodels.spec_hash import canonical_hash
from manymodels.spec_rules import DEFAULT_METRIC
from manymodels.spec_sections import (  # noqa: F401 (re-exported: manymodels.spec.Selection, …)
    MAX_LAG,
    Artifacts,
    Calibration,
    Candidate,
    Cost,
    Decision,
    Fallback,
    Intervals,
    Promotion,
    Rolling,
    Schedule,
    Selection,
    Validation,
    _Frozen,
    _one_line,
)
from manymodels.store_urls import data_path

Task = Literal["regression", "classification"]
CalendarPart = Literal["year", "month", "week", "day_of_week", "day_of_year", "quarter"]
ChoosableTransform = Literal["none", "difference", "scale"]  # in a list: chosen by validation


class Spec(_Frozen):
    """A validated, immutable description of one many-models job.

    These options turn a spec with a ``time_column`` into a forecasting spec; each needs it, and
    specs without them train exactly as before:

    * ``calendar`` — parts of the (date) time column added as numeric features, named
      ``<time_column>_<part>``: any of ``year``, ``month``, ``week`` (ISO week), ``day_of_week``
      (Monday = 0), ``day_of_year``, ``quarter``. ``calendar = ["week", "month"]`` adds
      ``week_week`` and ``week_month`` for a time column ``week``.
    * ``lags`` — earlier values of the (numeric) target within the same partition, named
      ``<target>_lag<k>``: ``lags = [1, 2]`` adds ``units_lag1`` and ``units_lag2``. Lags count
      rows of the time-sorted partition (periods of a regular series); rows whose lags reach
      before the partition's first row are not trained on. ``manymodels forecast`` feeds each
      step's prediction into the next step's lags — or, when every lag is at least the
      horizon, predicts all steps at once (direct).
    * ``rolling`` — rolling statistics of lagged targets, ``[{ lag = 8, window = 4, stat =
      "mean" }]`` adds ``units_roll_mean_lag8_w4`` (see ``Rolling``); stats ``mean``, ``std``,
      ``min``, ``max``.
    * ``changes`` — each period's change of a numeric feature, named ``<column>_change``:
      ``changes = ["price"]`` adds ``price - price one row earlier`` in the time-sorted
      partition as ``price_change`` (the first row's is undefined and not trained on). With a
      differenced target it is how a regression with ARIMA errors sees its regressors: a
      change of the price moves the sales, where the price's level says little about the
      sales' change. The feature itself (``price``) stays a feature; forecasts and rows scored
      by time take its previous value from the row before them or the version's history
      (``manymodels.changes``).
    * ``holidays`` — dates a business-day table (frequency ``B``, or ``C-Mon-...`` for
      custom weekdays) is closed on, ``["2024-12-25", "2025-01-01"]``: forecast steps, the
      period before a time and the lag-gap check skip them, as pandas'
      ``CustomBusinessDay(holidays=...)`` does; a month's first or last business day
      (``BMS``, ``BME``, ``3BMS``) moves past them as ``CustomBusinessMonthBegin`` / ``End``
      moves it. The version records them with its frequency. ``holidays = "holidays.csv"``
      reads them from a CSV instead (relative to the spec file; ``manymodels.holiday_file``).
    * ``target_transform`` — ``difference`` (each period's change), ``scale`` (the
      partition's mean and standard deviation) or ``auto_difference`` (a difference where the
      partition's KPSS test finds no stable level, none elsewhere: ``manymodels.stationarity``)
      turns each partition's target before lags are
      taken and the model is fitted; every answer is turned back to the target's units —
      forecasts, validation metrics, ``score``, ``LoadedModel.predict``, ``/predict`` (see
      ``manymodels.targetunits``). Lag features a row carries are in the model's
      (transformed) units, as the version's history records them. A list, e.g.
      ``["none", "difference"]``, tries each per partition — lags and every candidate — and
      keeps the one whose validation score is best, as a grid of ``params`` does: a trending
      series learns its changes, a level series its level. Global candidates are fitted once
      per transform, each on its target, and compete under it. The scores compare forecasts when
      every lag is at least the validation ``size`` (direct): with shorter lags a level
      model's fold is scored on its true lags, one step ahead, a differenced one's as a
      forecast from the fold's start. A champion that learnt another transform is scored on
      the rows newer than its data, from its own transform's view of those periods, in the
      target's units; with no such row it is not scored (its features differ), and the
      challenger waits for a manual promotion.

    Derived columns are ordinary features: ``forecast`` builds them itself; a row scored
    directly (``/predict``, ``LoadedModel.predict``) carries them, or gives its time and gets
    them from the version's history when its lags reach no further (``manymodels.rowlags``).

    ``missing_target`` says what a row without a target value means: ``drop`` (the default)
    leaves it out of its partition's training rows and counts it in the version's record and
    the run's summary; ``error`` fails the partition instead.

    ``bad_rows`` says what a stray word in a column of numbers means (``"n/a"`` in a price
    column): ``error`` (the default) rejects the table naming the first one; ``drop`` leaves
    those rows out and records how many per column in the run.
    """

    _source: ClassVar[str] = "<spec>"
    # read back from the registry (``from_dict(stored=True)``): its table's columns are the
    # ones it trained on, so ``data.resolve_columns`` does not refuse written names in them
    _stored: bool = PrivateAttr(default=False)

    name: Annotated[str, Field(min_length=1, max_length=100)]
    task: Task = "regression"
    partition_by: Annotated[list[str], Field(min_length=1)]
    target: str
    features: list[str] | None = None
    categorical: list[str] | None = None
    time_column: str | None = None
    calendar: list[CalendarPart] | None = None
    lags: list[Annotated[int, Field(strict=True, ge=1, le=MAX_LAG)]] | None = None
    rolling: list[Rolling] | None = None
    changes: list[str] | None = None
    holidays: list[str] | None = None
    target_transform: TransformKind | Annotated[list[ChoosableTransform], Field(min_length=1)] = (
        "none"
    )
    metric: str | None = None
    min_rows: Annotated[int, Field(ge=2)] = 10
    missing_target: Literal["drop", "error"] = "drop"
    bad_rows: Literal["error", "drop"] = "error"
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0  # numpy and sklearn take 0 … 2**32 - 1
    validation: Validation = Field(default_factory=Validation)
    candidates: Annotated[list[Candidate], Field(min_length=1)]
    fallback: Fallback = Field(default_factory=Fallback)
    promotion: Promotion = Field(default_factory=Promotion)
    selection: Selection = Field(default_factory=Selection)
    decision: Decision | None = None
    calibration: Calibration | None = None
    schedule: Schedule | None = None
    artifacts: Artifacts = Field(default_factory=Artifacts)
    intervals: Intervals | None = None

    @field_validator("partition_by")
    @classmethod
    def _distinct_keys(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("partition_by lists a column twice")
        return v

    @field_validator("features", "categorical")
    @classmethod
    def _distinct_columns(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            twice = sorted({c for c in v if v.count(c) > 1})
            if twice:
                raise ValueError(f"lists column(s) {', '.join(map(repr, twice))} more than once")
        return v

    @field_validator("calendar", "lags", "rolling", "changes")
    @classmethod
    def _distinct_options(cls, v: list[Any] | None) -> list[Any] | None:
        if v is not None:
            if not v:
                raise ValueError("is empty; omit it instead")
            if len(set(v)) != len(v):
                raise ValueError("lists a value twice")
        return v

    @field_validator("holidays", mode="before")
    @classmethod
    def _iso_dates(cls, v: Any) -> Any:
        """Business days' closed dates, as ``CustomBusinessDay(holidays=...)`` takes them:
        ISO text or TOML dates, or the path of a CSV of them (``holiday_file``; relative to
        the spec file, ``from_toml``), kept as sorted ISO text (what the version's plan
        records, not the path). An empty list closes no day: it is no holidays (``None``),
        so the spec hashes as one without them and a run of it resumes under either."""
        if v is None or (isinstance(v, list | tuple) and not v):
            return None
        if isinstance(v, str | os.PathLike):
            if not str(v).strip():  # read as the spec's own folder
                raise ValueError(holiday_file.EMPTY)
            if (hint := holiday_file.one_date_hint(str(v))) is not None:
                raise ValueError(hint)
            # file:///x.csv is /x.csv, as a data path; file://otherhost/x refused, naming it
            where = data_path(v if isinstance(v, str | Path) else Path(v))
            if "://" in str(where):  # read where the spec is read: it was the file './s3:'
                raise ValueError(f"'{v}' is a URL: a holidays file is read from a local path")
            return holiday_file.read_holidays(Path(where).expanduser())
        if not isinstance(v, list | tuple):
            raise ValueError(
                'is not a list of dates; write e.g. ["2024-12-25", "2025-01-01"], or the '
                'path of a CSV file of them, "holidays.csv"'
            )
        return sorted({spec_rules.iso_date(d) for d in v})

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Spec:
        # a run's spec read back (``from_dict(stored=True)``) trained and serves under the
        # rules of its day: its retrain over the router is not refused by a rule added since
        self._stored = bool((info.context or {}).get("stored"))
        spec_rules.check(self)
        return self

    # -- derived, never stored -------------------------------------------------------------
    @property
    def stored(self) -> bool:
        """Read back from the registry: trained under the rules of its day (``from_dict``)."""
        return self._stored

    @property
    def transforms(self) -> tuple[str, ...]:
        """Every target transform a partition tries (one, unless ``target_transform`` lists
        several)."""
        t = self.target_transform
        return tuple(t) if isinstance(t, list) else (t,)

    @property
    def transform(self) -> str:
        """The first of ``transforms``: the table's, and the global candidates'."""
        return self.transforms[0]

    @property
    def metric_name(self) -> str:
        return self.metric or DEFAULT_METRIC[self.task]

    @property
    def validation_strategy(self) -> str:
        if self.validation.strategy:
            return self.validation.strategy
        return "last" if self.time_column else "holdout"

    @property
    def calendar_columns(self) -> dict[str, str]:
        """``{derived feature: calendar part}``, e.g. ``{"week_month": "month"}``."""
        return {f"{self.time_column}_{part}": part for part in self.calendar or []}

    @property
    def lag_columns(self) -> dict[str, int]:
        """``{derived feature: lag}``, e.g. ``{"units_lag1": 1}``."""
        return {f"{self.target}_lag{k}": k for k in self.lags or []}

    @property
    def rolling_columns(self) -> dict[str, Rolling]:
        """``{derived feature: rolling}``, e.g. ``{"units_roll_mean_lag8_w4": Rolling(...)}``."""
        return {
            f"{self.target}_roll_{r.stat}_lag{r.lag}_w{r.window}": r for r in self.rolling or []
        }

    @property
    def change_columns(self) -> dict[str, str]:
        """``{derived feature: the feature it is the change of}``, e.g. ``{"price_change":
        "price"}``."""
        return {f"{col}_change": col for col in self.changes or []}

    @property
    def derived_columns(self) -> list[str]:
        """Every feature training derives: calendar parts, lags, rolling statistics, changes."""
        return [
            *self.calendar_columns, *self.lag_columns, *self.rolling_columns,
            *self.change_columns,
        ]  # fmt: skip

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON form: equal specs hash equal whatever their formatting.

        Options added after the first release are left out while they hold their default, so
        a spec that does not use them keeps its hash (and its runs stay resumable)."""
        return canonical_hash(self.model_dump(mode="json"))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, source: str = "<spec>", stored: bool = False
    ) -> Spec:
        """Validate a plain mapping; errors name ``source`` and the dotted key path.
        ``stored``: a run's spec read back from the registry, which trained under the rules
        of its day — rules added since that only catch a slip (interval levels written as
        fractions) do not stop its retrain."""
        try:
            return cls.model_validate(data, context={"stored": stored})
        except ValidationError as e:
            raise SpecError(describe(e, source)) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Spec:
        """Read and validate a TOML spec file."""
        path = Path(path).expanduser()  # "~/specs/x.toml" from Python, as the data path
        try:
            # utf-8-sig: a byte-order mark (Notepad's "UTF-8 with BOM") is no part of the TOML;
            # tomllib refused it as "Invalid statement (at line 1, column 1)"
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise SpecError(f"{path}: spec file not found") from None
        except UnicodeDecodeError as e:
            why = _not_utf8(e)
            raise SpecError(f"{path}: cannot read spec file ({why}){_data_hint(path)}") from None
        except OSError as e:
            raise SpecError(f"{path}: cannot read spec file ({e}){_data_hint(path)}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"{path}: not valid TOML: {e}{_data_hint(path)}") from None
        listed = data.get("holidays")
        if (
            isinstance(listed, str)
            and listed.strip()
            and holiday_file.one_date_hint(listed) is None
        ):
            # a CSV beside the spec: relative to the spec file, not to where one runs it;
            # a URL (file:///x.csv is /x.csv) left whole, to be read or refused as it is
            with contextlib.suppress(DataError):
                where = str(data_path(listed))
                if "://" not in where:
                    data["holidays"] = str(path.parent / Path(where).expanduser())
        return cls.from_dict(data, source=str(path))

    @classmethod
    def coerce(cls, spec: Spec | dict[str, Any] | str | Path) -> Spec:
        """Accept what users naturally pass: a Spec, a dict, or a path to a TOML file."""
        if isinstance(spec, Spec):
            return spec
        if isinstance(spec, dict):
            return cls.from_dict(spec)
        if not isinstance(spec, str | os.PathLike):  # None failed in pathlib, bare
            # a frame's (or an array's) repr is rows cut mid-line ('      store  ...s x 7
            # columns]'): it is the data, given where the spec goes (train(frame, spec))
            table = hasattr(spec, "shape")
            hint = ": the spec comes first, then the data" if table else f" {reprlib.repr(spec)}"
            raise SpecError(
                "a spec is a Spec, a dict or the path of a TOML file, not "
                f"{type(spec).__name__}{hint}"
            )
        return cls.from_toml(spec)


def _not_utf8(error: UnicodeDecodeError) -> str:
    """Where a spec is not UTF-8, as the TOML errors say where: by line and column. Python's
    own words gave a byte offset ("can't decode byte 0xe9 in position 814"), to be counted by
    hand; a Latin-1 "é" in a comment is the usual cause."""
    before = bytes(error.object[: error.start]).removeprefix(b"\xef\xbb\xbf")
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1  # characters
    return (
        f"not UTF-8: byte 0x{error.object[error.start]:02x} at line {line}, column {column}; "
        "save the file as UTF-8"
    )


DATA_SUFFIXES = frozenset({".csv", ".tsv", ".parquet", ".pq", ".gz"})


def _data_hint(path: Path) -> str:
    """What a table given where the spec goes is: ``manymodels train sales.csv spec.toml``
    said "not valid TOML: Expected '=' after a key …", which read as a broken spec."""
    if path.suffix.lower() not in DATA_SUFFIXES:
        return ""
    return "; it looks like a data file: the spec (TOML) comes first, then the data"
