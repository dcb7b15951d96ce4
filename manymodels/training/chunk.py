"""What one worker task does: train every partition of a chunk, each failure its own outcome.

Per partition: leave out the rows that cannot train (``rows``) → fit and select (``select``) →
store the model and the partition's input rows in the artifact store → a ``NewVersion`` for
the driver to register. Anything a partition's data makes go wrong becomes that partition's
``failed`` outcome; the chunk carries on. What the infrastructure makes go wrong (a full disk,
an I/O error while storing) is a ``lost`` outcome instead: not the partition's fault, and a
resumed run trains it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from manymodels.artifacts import ArtifactStore, serialize
from manymodels.classes import ClassPrior
from manymodels.exceptions import error_text, short_message
from manymodels.feature_schema import FeatureSchema
from manymodels.global_members import stored_form
from manymodels.lagfeatures import TargetTransform
from manymodels.partition import PartitionedTable
from manymodels.registry.entities import CandidateResult, NewVersion, PartitionOutcome
from manymodels.spec import Spec
from manymodels.targetunits import RawTarget
from manymodels.training.compare import Champion, Comparison, load_champion, newer_than
from manymodels.training.external import External
from manymodels.training.global_fit import GlobalLoader, GlobalModel, bound
from manymodels.training.heldout import across_transforms, rerecorded
from manymodels.training.history import ChunkRows
from manymodels.training.metrics import beats
from manymodels.training.records import (
    evaluation_record,
    jsonable,
    validation_record,
    with_classes,
    with_profile,
)
from manymodels.training.rows import drop_masks, kept_rows
from manymodels.training.schema import feature_schema, partition_history
from manymodels.training.select import Fitted, fit_partition, refitted
from manymodels.training.splits import PartitionSkipped, take
from manymodels.training.transforms import View, alternative_views

Result = NewVersion | PartitionOutcome


def train_chunk(
    table: PartitionedTable,
    spec: Spec,
    store: ArtifactStore,
    champions: Mapping[str, Champion] | None = None,
    external: Sequence[External] = (),
) -> list[Result]:
    """Train every partition of a chunk; one partition's failure never stops the others.

    ``champions`` names the production version of partitions being retrained; ``external``
    the run's global models, each with its predictions of this chunk's rows only."""
    champions = champions or {}
    views = [View(table, spec), *alternative_views(table, spec)]
    ordered = bool(spec.time_column) and spec.validation_strategy in ("last", "kfold")
    schemas = [feature_schema(v.table, v.spec) for v in views]
    masks = [drop_masks(v.table, v.spec) for v in views]
    numeric = [c for c in table.features if c not in table.categorical]
    kept_rows_of = ChunkRows(table, spec)
    load_global = GlobalLoader(store, spec.artifacts.format)
    out: list[Result] = []
    for i, key in enumerate(table.keys):
        key_values = dict(zip(spec.partition_by, table.key_values[i], strict=True))
        first, *others = [
            _inputs(v.table, i, schema, mask, key_values, ordered=ordered).with_external(
                [e for e in external if e.transform == v.transform],
                partial(load_global, key=key_values),
            )
            for v, schema, mask in zip(views, schemas, masks, strict=True)
        ]
        out.append(
            train_one(
                first.X,
                first.y,
                spec,
                store,
                key=key,
                key_values=key_values,
                fingerprint=table.fingerprints[i],
                schema=first.schema,
                numeric=numeric,
                durable=False,
                champion=champions.get(key),
                times=first.times,
                dropped=first.dropped,
                kept=kept_rows_of,
                prior=table.extra.get("class_prior"),
                external=first.external,
                raw=first.raw,
                alternatives=others,
            )
        )
    store.sync()  # every artifact is on disk before the driver registers any of them
    return out


@dataclass(frozen=True)
class Inputs:
    """One partition's rows as one target transform sees them (``training.transforms``)."""

    X: Any
    y: np.ndarray
    schema: dict[str, Any]
    raw: RawTarget | None
    times: np.ndarray | None
    dropped: Mapping[str, int]
    rows: Any = None
    external: Sequence[External] = ()  # the global models fitted on this transform's target

    def with_external(self, external: Sequence[External], load: Callable[..., Any]) -> Inputs:
        """These inputs with the run's global models of their transform, each holding its
        predictions of these rows and able to load itself (``load(sha256)``)."""
        mine = [replace(e, pred=e.pred[self.rows], load=partial(load, e.sha256)) for e in external]
        return replace(self, external=mine)


def _inputs(
    table: PartitionedTable,
    i: int,
    schema: dict[str, Any],
    masks: Mapping[str, np.ndarray],
    key_values: dict[str, Any],
    *,
    ordered: bool,
) -> Inputs:
    """Partition ``i``'s kept rows, schema (with its history) and raw target in ``table``."""
    given = table.rows(i)
    rows, dropped = kept_rows(given, masks)
    if "forecast" in schema:
        last = _last_known(given, masks.get("missing_target"))
        history = partition_history(table, i, schema, key_values, last=last)
        schema = {**schema, "history": history}
    return Inputs(
        take(table.X, rows),
        table.y[rows],
        schema,
        raw_target(table, given, rows, schema, ordered=ordered),
        None if table.time is None else table.time[rows],
        dropped,
        rows,
    )


def raw_target(
    table: PartitionedTable,
    given: slice,
    rows: Any,
    schema: Mapping[str, Any],
    *,
    ordered: bool = False,
) -> RawTarget | None:
    """The kept ``rows`` of the partition at ``given`` as the table gave them (target, and
    each row's previous target), with the transform its history records; ``None`` without a
    ``target_transform``. A partition's first row has no previous target (NaN). ``ordered``:
    validation folds follow the rows in time, so a differenced fold is judged as a forecast
    (``RawTarget.periods``)."""
    transform = FeatureSchema.parse(schema).transform
    if table.raw_y is None or transform is None:
        return None
    index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else np.asarray(rows)
    previous = np.where(index > given.start, table.raw_y[np.maximum(index - 1, 0)], np.nan)
    periods = index - given.start if ordered else None
    return RawTarget(table.raw_y[index], previous, TargetTransform.from_json(transform), periods)


def train_one(
    X: Any,
    y: np.ndarray,
    spec: Spec,
    store: ArtifactStore,
    *,
    key: str,
    key_values: dict[str, Any],
    fingerprint: str,
    schema: dict[str, Any],
    numeric: Sequence[str],
    time_ordered: bool | None = None,
    durable: bool = True,
    champion: Champion | None = None,
    times: np.ndarray | None = None,
    dropped: Mapping[str, int] | None = None,
    kept: ChunkRows | None = None,
    prior: ClassPrior | None = None,
    external: Sequence[External] = (),
    raw: RawTarget | None = None,
    alternatives: Sequence[Inputs] = (),
) -> Result:
    """Fit, serialise and store one partition's model; every failure becomes an outcome.

    With ``durable=False`` the caller must ``store.sync()`` before the version is registered.
    With a ``champion``, the spec's promotion policy decides whether the new version replaces
    it. ``kept`` holds the chunk's input rows, stored once for all its partitions (only
    once a model is stored) and referenced by this version; ``dropped`` counts the rows left
    out of training, by reason.
    ``prior`` (classification) holds the table's classes: the version's feature schema lists
    them, so every version answers with the same probability columns.
    ``alternatives`` are the partition's rows under the spec's other target transforms (with
    the global models fitted on each): each is fitted too, and the best validation score is
    kept, with its inputs.
    """
    started = time.perf_counter()
    n = len(y)
    champion_model, load_error, unservable = load_champion(champion, store)
    if isinstance(champion_model, GlobalModel):  # it needs this partition's key values
        champion_model = bound(champion_model, key_values)

    views: list[Inputs] = []  # every transform's inputs: a champion's own among them

    def fit(inputs: Inputs) -> Fitted:
        kind = _kind(inputs)
        other = champion is not None and champion_model is not None and champion.transform != kind
        units, unseen = None, newer_than(inputs.times, champion.last_time if champion else None)
        if other:
            assert champion is not None
            own = next((v for v in views if _kind(v) == champion.transform), None)
            found = in_target_units(champion_model, own, inputs) if own is not None else None
            if found is not None and unseen is not None:  # both judged on the periods both see
                units, unseen = found[0], unseen & found[1]
        fitted = fit_partition(
            inputs.X,
            inputs.y,
            spec,
            key=key,
            categorical=inputs.schema["categorical"],
            numeric=numeric,
            time_ordered=time_ordered,
            champion=None if other and units is None else champion_model,
            champion_recipe=champion.recipe if champion is not None else None,
            champion_units=units,
            unseen=unseen,
            prior=prior,
            external=inputs.external,
            raw=inputs.raw,
            refit=False,  # ``best_transform`` refits the one chosen
        )
        if other and units is None:  # its features are another transform's, not among these
            assert champion is not None
            why = (
                f"the champion learnt target_transform '{champion.transform}', this version "
                f"'{kind}': no common features and units to score both on"
            )
            fitted = replace(fitted, comparison=Comparison(None, None, 0, why))
        return fitted

    try:
        given = Inputs(X, y, schema, raw, times, dropped or {}, external=external)
        views.extend([given, *alternatives])
        margin = spec.selection.transform_margin
        fitted, chosen = best_transform(fit, given, alternatives, margin=margin)
        X, y, schema, raw, times, dropped = (
            chosen.X, chosen.y, chosen.schema, chosen.raw, chosen.times, chosen.dropped
        )  # fmt: skip
        n = len(y)
        stored, members = stored_form(fitted.model)  # a global member: by its sha256
        data = b"" if fitted.artifact else serialize(stored, spec.artifacts.format)
    except PartitionSkipped as e:
        left_out = sum((dropped or {}).values())
        why = f"{e} ({left_out} more left out: {_reasons(dropped)})" if left_out else str(e)
        return PartitionOutcome(key, "skipped", "PartitionSkipped", why, n, fingerprint)
    except Exception as e:
        return PartitionOutcome(key, "failed", type(e).__name__, short_message(e), n, fingerprint)
    try:  # a global model chosen is stored already: the version references its bytes
        sha, size = _global(fitted) or store.put(data, durable=durable)
    except Exception as e:  # the disk, not the data (ENOSPC, EIO…): resumable, never "failed"
        return PartitionOutcome(key, "lost", type(e).__name__, short_message(e), n, fingerprint)
    warnings = list(fitted.warnings)
    if fitted.artifact is not None:
        schema = {**schema, "global": {"key": key_values, "label": fitted.artifact.label}}
    data_sha: str | None = None
    if kept is not None:
        try:
            kept.encoded()
        except Exception as e:  # a column Arrow cannot type (mixed types): the model is good
            warnings.append(f"training rows not kept: {error_text(e)}")
        else:
            try:
                data_sha = kept.stored(store, durable=durable)
            except Exception as e:  # the disk, as for the model: a later append needs them
                return PartitionOutcome(
                    key, "lost", type(e).__name__, short_message(e), n, fingerprint
                )
    return NewVersion(
        key=key,
        key_values=key_values,
        n_rows=n,
        data_fingerprint=fingerprint,
        estimator=fitted.estimator,
        params=jsonable(fitted.params),
        metric=fitted.metric or spec.metric_name,
        score=fitted.score,
        naive_score=fitted.naive_score,
        candidates=[
            CandidateResult(c.label, c.estimator, jsonable(c.params), c.score, c.error)
            for c in fitted.candidates
        ],
        feature_schema=with_profile(with_classes(schema, prior, fitted), X, y, spec, times, prior),
        artifact_sha256=sha,
        artifact_size=size,
        members=tuple(members),
        train_seconds=time.perf_counter() - started,
        warnings=warnings,
        validation=validation_record(spec, fitted, dropped),
        evaluation=evaluation_record(
            spec,
            fitted,
            champion,
            load_error,
            identical=champion is not None and champion.artifact_sha256 == sha,
            unservable=unservable,
        ),
        data_sha256=data_sha,
    )


def best_transform(
    fit: Callable[[Inputs], Fitted],
    given: Inputs,
    alternatives: Sequence[Inputs],
    *,
    margin: float = 0.0,
) -> tuple[Fitted, Inputs]:
    """The best-scoring fit of ``given`` and of each alternative transform's inputs (each with the
    global models fitted on its target), and the inputs it was fitted on; an alternative
    replaces ``given``'s fit only when it beats it by ``margin`` (``[selection]
    transform_margin``). ``fit`` may leave its model to be fitted on all rows
    (``Fitted.pending``): only the chosen transform's model is, here. A transform that
    cannot fit this partition on its folds (too few rows once differenced, a candidate's
    complaint) drops out, and so does a chosen one whose model cannot fit all rows (the next
    best is chosen); one not chosen is never fitted on all rows, so its score (and its
    held-out errors in the interval replay) stand. The first error is raised when none fits.
    With alternatives, the version's validation record keeps every transform's score
    (``transforms``: kind → score, ``None`` where it failed), and its interval record the
    errors of this choice too, replayed without each fold (``training.heldout``)."""
    options = [given, *alternatives]
    fits: dict[int, Fitted] = {}
    errors: dict[int, Exception] = {}
    for i, inputs in enumerate(options):
        try:
            fits[i] = fit(inputs)
        except Exception as e:
            errors[i] = e
    while True:
        if not fits:
            raise errors[min(errors)]
        best = max(fits, key=lambda i: fits[i].score)  # the first of equal scores
        if best != 0 and 0 in fits and not beats(fits[best].score, fits[0].score, margin):
            best = 0  # a narrow win of another transform is noise
        try:
            chosen = refitted(fits[best], options[best].X, options[best].y)
            break
        except Exception as e:  # its model cannot fit all rows: another transform's may
            del fits[best]
            errors[best] = e
    if alternatives and chosen.intervals:  # bands from errors of the transform choice too
        held = across_transforms(
            [f.held_out for f in fits.values()], first_fitted=0 in fits, margin=margin
        )
        if held is not None:
            chosen = replace(chosen, intervals=rerecorded(chosen.intervals, held))
    if alternatives:
        scores = {_kind(o): (fits[i].score if i in fits else None) for i, o in enumerate(options)}
        failed = [
            f"target_transform '{_kind(options[i])}' not fitted: {error_text(e)}"
            for i, e in sorted(errors.items())
        ]
        chosen = replace(
            chosen,
            validation={**chosen.validation, "transforms": scores},
            warnings=[*chosen.warnings, *failed],
        )
    return chosen, options[best]


def in_target_units(
    model: Any, own: Inputs, ours: Inputs
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
    """A champion of another target transform, as it predicts rows of ``ours`` (positions)
    in the target's units from ``own``, its transform's view of the same periods (matched by
    time), and which rows of ``ours`` that view holds (a differenced view lacks the change
    after a missing target, a level view has it): a retrain choosing the other transform was
    never compared, and so never promoted under ``if_better`` however much better it was.
    ``None`` without times to match by."""
    times = ours.times
    if own.times is None or times is None:
        return None
    where = {t: j for j, t in enumerate(own.times.tolist())}  # one row per period
    covered = np.fromiter((t in where for t in times.tolist()), dtype=bool, count=len(times))

    def predict(rows: np.ndarray) -> np.ndarray:
        mine = np.array([where[t] for t in times[rows].tolist()], dtype=np.intp)
        fit = model if own.raw is None else own.raw.judged(model, mine)
        return np.asarray(fit.predict(take(own.X, mine)), dtype=np.float64)

    return predict, covered


def _kind(inputs: Inputs) -> str:
    """The transform these inputs' model learns, as its history records it (``auto_difference``
    resolved; none recorded: ``none``)."""
    return FeatureSchema.parse(inputs.schema).transform_kind


def _global(fitted: Fitted) -> tuple[str, int] | None:
    art = fitted.artifact
    return None if art is None else (art.sha256, art.size)


def _reasons(dropped: Mapping[str, int] | None) -> str:
    return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in (dropped or {}).items())


def _last_known(rows: slice, missing_target: np.ndarray | None) -> int | None:
    """The table row of a partition's last row with a target (``None`` when it has none): a
    forecast starts after it. Rows after it are the periods to forecast; a row left out of
    training for another reason (a missing feature value under ``changes``) is still a
    period whose target is known, and was forecast again, its target ignored by the lags."""
    if missing_target is None:
        return rows.stop - 1 if rows.stop > rows.start else None
    known = np.flatnonzero(~missing_target[rows])
    return int(known[-1]) + rows.start if len(known) else None
