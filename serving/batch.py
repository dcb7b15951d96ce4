"""Rows of many partitions in one request (``POST /v1/predict``): grouped once, each model
called once, and the linear models of many partitions scored in one numpy call.

A batch of 100 rows over 100 partitions used to cost 2.3–2.8× the same rows sent to one
partition: per partition it paid a key re-parse, a cache lookup, its own input matrix, a
``predict`` and a conversion to JSON values, each a few microseconds of fixed cost against
one row of arithmetic. Here the work is split so that per-partition costs are dict lookups:

- ``plan`` (memory only, no I/O; the route runs it on the event loop) groups the rows by
  canonical key — each distinct key tuple encoded once — and resolves each group against the
  in-memory alias table; keys that came out of the encoder are not parsed again.
- ``score`` builds one input matrix for all rows whose models share a feature layout (the
  same spec), scores every linear model's rows together — each row's coefficients gathered
  and one stacked ``matmul`` of one-row products: the dot product a one-row request to that
  partition computes (and scikit-learn's ``predict`` of that one row), so the same bits — the
  rows of partitions on one global LightGBM in one call, each with its key
  (``shared_models``: each row's trees alone, the same bits), and calls ``predict`` once per
  other model, with all its rows (as a request of those rows to its key would; BLAS may round
  a product of several rows differently in the last bit).

Answers come back in the request's row order; nothing is scored unless every row is valid
and every key is served. The common case — every key in production, every model in memory,
nothing to add to the answers — skips ``plan`` and ``score``: ``serving.plain``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from manymodels.derived_nulls import any_absent
from manymodels.exceptions import PartitionNotFound, first_line
from manymodels.features import missing_value
from manymodels.partition import FALLBACK_KEY
from manymodels.targetunits import to_target_units
from serving.affine import COEF, PACKED
from serving.answer_text import floats_text, joined_head, predictions_text
from serving.errors import MODEL_REFUSALS, REFUSED, ScoringFailed
from serving.grouping import group, refused_row
from serving.row_matrix import affine_rows, input_of, stacked
from serving.rows import InvalidRows, finite_answers, probabilities, to_json_list
from serving.served import ServedModel, can_score
from serving.shared_models import predicted_together

if TYPE_CHECKING:
    from serving.resolution import Target
    from serving.service import ModelService

Row = Mapping[str, Any]
Pair = tuple[str, int]  # (registry key, version): one model


@dataclass(frozen=True)
class Plan:
    """Which model answers each row: ``groups`` maps each requested key (canonical) to its
    row indexes, ``targets`` each requested key to the model that answers for it, ``pairs``
    each model to the requested keys it answers for; ``fallback``, whether the request lets
    the fallback answer (a key retired while its model loads is resolved again so)."""

    groups: dict[str, list[int]]
    targets: dict[str, Target]
    pairs: dict[Pair, list[str]]
    fallback: bool = True


def grouped(service: ModelService, rows: Sequence[Row]) -> dict[str, list[int]]:
    """``{canonical key: [row indexes]}``; ``InvalidRows`` for rows without usable key values,
    ``PartitionNotFound`` while the registry has no models in production."""
    columns = service.partition_by()
    if not columns:
        raise PartitionNotFound("the registry has no models in production yet")
    return group(rows, columns)


def plan(
    service: ModelService,
    rows: Sequence[Row],
    *,
    fallback: bool = True,
    groups: dict[str, list[int]] | None = None,
) -> Plan:
    """Group ``rows`` by partition (unless ``groups`` has) and resolve each group (memory only).

    Raises what ``grouped`` raises, ``InvalidRows`` for a key value that can name no
    partition (``grouping.refused_row``: a boolean, an infinity) of a key with no partition,
    fallback or not, and ``PartitionNotFound`` naming the first ten unknown keys (in row
    order) when they cannot fall back."""
    if groups is None:
        groups = grouped(service, rows)
    targets: dict[str, Target] = {}
    unknown: list[str] = []
    for key in groups:
        try:
            targets[key] = service.resolve_canonical(key, fallback=fallback)
        except PartitionNotFound:
            unknown.append(key)
    columns = service.partition_by() or ()
    # no partition of its own: answered by the fallback, or unknown (?fallback=false, or no
    # fallback model), where such a key was the generic 404 the fallback's 422 was not
    unserved = set(unknown)
    refused = [
        found
        for key in groups
        if (key in unserved or targets[key].fallback)
        and (found := refused_row(groups[key], rows, columns))
    ]
    if refused:  # a boolean or infinite key value is a mistake, not an unknown partition
        raise InvalidRows(refused)
    if unknown:
        shown = ", ".join(f"'{k}'" for k in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        why = REFUSED if not fallback else "and the registry has no fallback model"
        raise PartitionNotFound(f"no partition {shown}{more} in production, {why}")
    pairs: dict[Pair, list[str]] = {}
    for key, t in targets.items():
        pairs.setdefault((t.key, t.version), []).append(key)
    return Plan(groups, targets, pairs, fallback)


def cached(service: ModelService, batch: Plan) -> dict[Pair, ServedModel] | None:
    """Every model the plan needs, if all are in memory already (else ``None``): then
    scoring needs no I/O and may run on the event loop. A linear model's coefficients count
    only when a load would run on the loop anyway (``inline_loads``): a row they cannot
    score (a NaN) makes the full model load."""
    models: dict[Pair, ServedModel] = {}
    peek = service.in_memory if service.inline_loads else service.cache.peek
    for pair in batch.pairs:
        model = peek(*pair)
        if model is None:
            return None
        models[pair] = model
    return models


def score(
    service: ModelService,
    batch: Plan,
    rows: Sequence[Row],
    *,
    with_probabilities: bool = False,
    models: Mapping[Pair, ServedModel] | None = None,
    used: dict[Pair, ServedModel] | None = None,
) -> list[dict[str, Any]]:
    """One answer per row, in row order: ``partition``, ``served_by``, ``version``,
    ``fallback``, ``target`` (the column the answering version predicts, from its schema),
    ``prediction`` (and ``probabilities`` on request). ``models`` are those
    ``cached`` found; others are loaded (a version deleted since the alias table was read
    is replaced by the one production points at now, and the answer says so). ``used``, if
    given, receives every model that answered, by ``(served_by, version)``: what a caller
    adds to the answers needs no second cache lookup (which, past the cache's size, would
    load evicted models again)."""
    targets = dict(batch.targets)
    head: dict[str, dict[str, Any]] = {}  # each requested key's answer but its prediction
    by_model: dict[Pair, tuple[ServedModel, list[int]]] = {}
    answering: dict[Pair, list[str]] = {}  # each model's requested keys

    def load(keys: list[str]) -> ServedModel:
        """The model that answers for ``keys``, loaded; if its alias moved on (or the
        partition was retired, the fallback answering), so did their answers."""
        fresh, loaded = service.load(targets[keys[0]], fallback=batch.fallback)
        if (fresh.key, fresh.version) != (targets[keys[0]].key, targets[keys[0]].version):
            for key in keys:
                targets[key] = replace(
                    targets[key], key=fresh.key, version=fresh.version, fallback=fresh.fallback
                )
        return loaded

    def answer_with(loaded: ServedModel, keys: list[str]) -> list[int]:
        """``loaded`` answers ``keys``' rows (returned): their heads say so."""
        column = loaded.schema.target  # the column this model predicts: its answers name it
        for key in keys:
            t = targets[key]
            head[key] = {  # the key as the per-key route names it: canonical ("2.0" is 2)
                "partition": t.partition,
                "served_by": t.key,
                "version": t.version,
                "fallback": t.fallback,
                "target": column,
            }
        idx = [i for key in keys for i in batch.groups[key]]
        pair = (loaded.key, loaded.version)
        if used is not None:
            used[pair] = loaded
        answering.setdefault(pair, []).extend(keys)
        if pair in by_model:  # two aliases now at the same version
            by_model[pair][1].extend(idx)
        else:
            by_model[pair] = (loaded, idx)
        return idx

    for pair, keys in batch.pairs.items():
        loaded = models.get(pair) if models is not None else service.in_memory(*pair)
        answer_with(loaded if loaded is not None else load(keys), keys)

    out_values: list[Any] = [None] * len(rows)
    proba: list[Any] | None = [None] * len(rows) if with_probabilities else None
    refused: list[ServedModel] = []  # coefficients that cannot score their rows (a NaN)
    for X, members in _inputs(rows, by_model.values()):
        refused += _predict_all(X, members, out_values, proba)
    if refused:  # their full models, loaded as any other: a version gc deleted is re-read
        again: list[tuple[ServedModel, list[int]]] = []
        for slim in refused:
            pair = (slim.key, slim.version)
            del by_model[pair]
            keys = answering.pop(pair)
            if used is not None:
                del used[pair]
            full = load(keys)
            again.append((full, answer_with(full, keys)))
        for X, members in _inputs(rows, again):  # the version answering may be another
            _predict_all(X, members, out_values, proba)
    for loaded, idx in by_model.values():  # a target_transform: answers back in its units
        if loaded.schema.transform is not None:
            mine = to_target_units([out_values[i] for i in idx], [rows[i] for i in idx],
                                   loaded.schema, idx)  # fmt: skip
            for i, value in zip(idx, to_json_list(mine), strict=True):
                out_values[i] = value
    finite_answers(out_values)
    if service.sampler is not None:  # drift monitoring: a bounded sample of each model's rows
        service.sampler.offer_many(
            rows, ((k, v, idx) for (k, v), (_, idx) in by_model.items() if k != FALLBACK_KEY)
        )

    out: list[dict[str, Any]] = []
    row_key = [""] * len(rows)
    for key, idx in batch.groups.items():
        for i in idx:
            row_key[i] = key
    for i, key in enumerate(row_key):
        probs = proba[i] if proba is not None else None
        out.append({**head[key], "prediction": out_values[i], "probabilities": probs})
    fell_back = [k for k, t in targets.items() if t.fallback and t.partition != FALLBACK_KEY]
    service.count(len(rows), len(fell_back), sum(len(batch.groups[k]) for k in fell_back))
    return out


Member = tuple[ServedModel, list[int], slice]  # a model, its rows, where they are in X


def _inputs(
    rows: Sequence[Row], models: Iterable[tuple[ServedModel, list[int]]]
) -> list[tuple[Any, list[Member]]]:
    """One model input per feature layout, built from all the rows of the models that share
    it (a matrix, or a frame where the layout has text features); each model's rows are one
    slice of it. Every problem in every row is reported at once, as one ``InvalidRows``."""
    layouts: dict[Any, list[tuple[ServedModel, list[int]]]] = {}
    for loaded, idx in models:
        shared = bool(loaded.layout)
        plan = loaded.schema.forecast
        if shared and plan is not None and plan.derives:  # lags or calendar parts left out
            shared = not any_absent([rows[i] for i in idx], loaded.schema)  # its own
        layouts.setdefault(loaded.layout if shared else id(loaded), []).append((loaded, idx))
    out: list[tuple[Any, list[Member]]] = []
    errors: list[dict[str, Any]] = []
    n_errors = 0
    for sharing in layouts.values():
        idx = [i for _, member_idx in sharing for i in member_idx]
        try:
            X = input_of(sharing[0][0], [rows[i] for i in idx], idx)
        except InvalidRows as e:
            errors += e.errors
            n_errors += e.total
            continue
        members: list[Member] = []
        start = 0
        for loaded, member_idx in sharing:
            members.append((loaded, member_idx, slice(start, start + len(member_idx))))
            start += len(member_idx)
        out.append((X, members))
    if n_errors:
        errors.sort(key=lambda err: err["loc"][2])
        raise InvalidRows(errors, n_errors)
    return out


def _predict_all(
    X: Any, members: list[Member], answers: list[Any], proba: list[Any] | None
) -> list[ServedModel]:
    """Fill ``answers`` (and ``proba``) for the rows of ``members``, all fed from ``X``;
    returns the models held as coefficients only that cannot score their rows (``score``
    loads them in full, as it loads any model, and scores their rows then)."""
    linear: list[Member] = []
    rest: list[Member] = []
    if len(members) > 1 and proba is None and type(X) is np.ndarray and np.isfinite(X).all():
        n_features = X.shape[1]
        for m in members:
            a = m[0].affine
            flat = a is not None and a[PACKED] is not None and a[COEF].shape[0] == n_features
            (linear if flat else rest).append(m)
    if len(linear) > 1:
        _stacked(X, linear, answers)
    else:
        rest = members
    if len(rest) > 1 and proba is None:  # partitions on one global model: one call
        rest = _shared(X, rest, answers)
    refused: list[ServedModel] = []
    for loaded, idx, rows_in_x in rest:
        Xm = X[rows_in_x] if type(X) is np.ndarray else X.iloc[rows_in_x].reset_index(drop=True)
        if not can_score(loaded, Xm):
            refused.append(loaded)
            continue
        preds, probs = predict_one(loaded, Xm, proba is not None, rows=idx)
        for n, i in enumerate(idx):
            answers[i] = preds[n]
            if proba is not None and probs is not None:
                proba[i] = probs[n]
    return refused


def _shared(X: Any, members: list[Member], answers: list[Any]) -> list[Member]:
    """Fill ``answers`` for the members on one global model, a call per model for all their
    rows (``shared_models``); returns the members left to their own ``predict``."""
    done: set[int] = set()
    spans = [range(s.start, s.stop) for _, _, s in members]
    for together, got in predicted_together([m for m, _, _ in members], X, spans):
        values = iter(to_json_list(got))
        for i in together:
            for row in members[i][1]:
                answers[row] = next(values)
        done.update(together)
    return [m for i, m in enumerate(members) if i not in done]


def predict_one(
    loaded: ServedModel, X: Any, with_probabilities: bool, *, rows: Sequence[int] | None = None
) -> tuple[list[Any], list[dict[str, float]] | None]:
    """One model's predictions (and probabilities) for ``X`` as JSON values; a model that
    cannot score the rows is a ``ScoringFailed`` naming the partition and version (and, for
    a missing value, the row — ``rows``: their numbers in the request — and the feature)."""
    schema = loaded.schema
    try:
        preds = to_json_list(loaded.predict(X))
        proba = (
            probabilities(loaded.model, X, schema)
            if with_probabilities and schema.classifies
            else None
        )
    except MODEL_REFUSALS as e:
        first = first_line(e) + missing_value(X, schema, rows)
        raise ScoringFailed(
            f"partition '{loaded.key}' v{loaded.version} could not score the rows: {first}"
        ) from e
    return preds, proba


def _stacked(X: np.ndarray, members: list[Member], answers: list[Any]) -> None:
    """Score the rows of many single-output linear models at once: per row, its model's
    ``((x - mean) / scale) @ coef + intercept``, as a stack of one-row matrix products."""
    packed = stacked([m.affine[PACKED] for m, _, _ in members])  # type: ignore[index,misc]
    lengths = [len(idx) for _, idx, _ in members]
    if max(lengths) > 1:
        packed = packed[np.repeat(np.arange(len(members)), lengths)]
    if sum(lengths) < X.shape[0]:  # other models' rows are in X too
        X = X[[i for _, _, s in members for i in range(s.start, s.stop)]]
    values = to_json_list(affine_rows(X, packed))
    start = 0
    for _, idx, _ in members:
        for k, i in enumerate(idx):
            answers[i] = values[start + k]
        start += len(idx)


def encode(answers: list[dict[str, Any]]) -> str | None:
    """``{"predictions": answers}`` as compact UTF-8 JSON text, when every answer has the
    plain shape ``score`` gives — seven fields, a finite float prediction, no probabilities —
    else ``None``. Each answer's head (key, model, version, fallback, target) is encoded once per
    partition, with the string encoder ``json.dumps`` uses, and the predictions together by
    ``floats_text``: encoding 100 answers through ``json.dumps`` cost more than scoring them."""
    heads: dict[tuple[Any, ...], str] = {}
    starts: list[str] = []
    for a in answers:
        p = a["prediction"]
        if len(a) != 7 or a["probabilities"] is not None or type(p) is not float:
            return None
        if not math.isfinite(p):
            return None
        h = (a["partition"], a["served_by"], a["version"], a["fallback"], a["target"])
        head = heads.get(h)
        if head is None:
            partition, served_by, version, fallback, target = h
            if type(partition) is not str or type(served_by) is not str:
                return None
            if type(version) is not int or type(fallback) is not bool:
                return None
            if target is not None and type(target) is not str:
                return None
            head = heads[h] = joined_head(partition, served_by, version, fallback, target)
        starts.append(head)
    return predictions_text(starts, floats_text([a["prediction"] for a in answers]))
