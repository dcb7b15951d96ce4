"""What one worker task does: train every partition of a chunk, each failure its own outcome.

Per partition: leave out the rows that cannot train (``rows``) → fit and select (``select``) →
store the model and the partition's input rows in the artifact store → a ``NewVersion`` for
the driver to register. Anything a partition's data makes go wrong becomes that partition's
``failed`` outcome; the chunk carries on. What the infrastructure makes go wrong (a full disk,
an I/O error while storing) is a ``lost`` outcome instead: not the partition's fault, and a
resumed run trains it again. An artifact store that does not answer stops the chunk
(``ArtifactStoreUnavailable``), and the run with it (``manymodels.store_outage``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from manymodels.artifacts import ArtifactStore, serialize
from manymodels.classes import ClassPrior, as_labels
from manymodels.exceptions import ArtifactStoreUnavailable, error_text, short_message
from manymodels.global_members import stored_form
from manymodels.partition import PartitionedTable
from manymodels.registry.entities import CandidateResult, NewVersion, PartitionOutcome
from manymodels.spec import Spec
from manymodels.targetunits import RawTarget
from manymodels.training.compare import Champion, Comparison, load_champion, newer_than
from manymodels.training.external import External
from manymodels.training.global_fit import GlobalLoader, GlobalModel, bound
from manymodels.training.history import ChunkRows
from manymodels.training.param_checks import fits_unchecked
from manymodels.training.records import (
    evaluation_record,
    jsonable,
    validation_record,
    with_classes,
    with_profile,
)
from manymodels.training.rows import drop_masks
from manymodels.training.schema import feature_schema
from manymodels.training.select import Fitted, fit_partition
from manymodels.training.splits import PartitionSkipped, SplitsByCount
from manymodels.training.transform_choice import (
    Inputs,
    best_transform,
    in_target_units,
    inputs_of,
    transform_kind,
)
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
    splits_of = SplitsByCount(spec)  # a row count's time-ordered splits once a chunk
    out: list[Result] = []
    unchecked = fits_unchecked(
        spec, categorical=table.categorical, numeric=numeric, retrain=bool(champions)
    )
    with unchecked:  # each grid point's parameters checked once, not once a fit
        for i, key in enumerate(table.keys):
            key_values = dict(zip(spec.partition_by, table.key_values[i], strict=True))
            first, *others = [
                inputs_of(v.table, i, schema, mask, key_values, ordered=ordered).with_external(
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
                    splits_of=splits_of,
                    rows=first.rows,
                )
            )
    store.sync()  # every artifact is on disk before the driver registers any of them
    return out


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
    splits_of: SplitsByCount | None = None,
    rows: Any = None,
) -> Result:
    """Fit, serialise and store one partition's model; every failure becomes an outcome but
    ``ArtifactStoreUnavailable``, which stops the chunk.

    With ``durable=False`` the caller must ``store.sync()`` before the version is registered.
    With a ``champion``, the spec's promotion policy decides whether the new version replaces
    it. ``kept`` holds the chunk's input rows, stored once for all its partitions (only
    once a model is stored) and referenced by this version; ``dropped`` counts the rows left
    out of training, by reason.
    ``prior`` (classification) holds the table's classes: the version's feature schema lists
    them, so every version answers with the same probability columns.
    ``alternatives`` are the partition's rows under the spec's other target transforms (with
    the global models fitted on each): each is fitted too, and the best validation score is
    kept, with its inputs. ``splits_of`` (the chunk's) shares its partitions' splits.
    """
    started = time.perf_counter()
    if spec.task == "classification":  # 0/1 read as float beside empty cells: int classes
        y = as_labels(y)
    n = len(y)
    champion_model, load_error, unservable = load_champion(champion, store)
    if isinstance(champion_model, GlobalModel):  # it needs this partition's key values
        champion_model = bound(champion_model, key_values)

    views: list[Inputs] = []  # every transform's inputs: a champion's own among them

    def fit(inputs: Inputs) -> Fitted:
        kind = transform_kind(inputs)
        other = champion is not None and champion_model is not None and champion.transform != kind
        units, unseen = None, newer_than(inputs.times, champion.last_time if champion else None)
        if other:
            assert champion is not None
            own = next((v for v in views if transform_kind(v) == champion.transform), None)
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
            splits_of=splits_of,
            rows=inputs.rows,
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
        given = Inputs(X, y, schema, raw, times, dropped or {}, rows, external=external)
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
    except ArtifactStoreUnavailable:
        raise  # the task stops: each later put would wait out the same timeouts
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
            except ArtifactStoreUnavailable:
                raise
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


def _global(fitted: Fitted) -> tuple[str, int] | None:
    art = fitted.artifact
    return None if art is None else (art.sha256, art.size)


def _reasons(dropped: Mapping[str, int] | None) -> str:
    return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in (dropped or {}).items())
