"""The error of a table whose unknown keys go to a fallback trained by another spec.

A registry has one fallback (``__fallback__``), trained by the spec of its partitions that
trained first (``run_plan.other_specs_fallback`` warns the second spec's run). Kept apart
from ``scoring.plan``, which calls ``plan_columns`` for the columns its units read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.features import feature_kinds
from manymodels.registry.client import Registry

if TYPE_CHECKING:
    from manymodels.scoring.plan import ModelRef


def plan_columns(
    df: pd.DataFrame,
    reg: Registry,
    positions: np.ndarray,
    schemas: Sequence[FeatureSchema],
    units: Sequence[ModelRef],
    fallback_rows: int,
    source: str,
    alias: str,
) -> dict[tuple[str, bool], np.ndarray]:
    """``_columns`` of the schemas the ``units`` use, with the fallback named when only its
    columns are missing (``refuse_fallback_columns``)."""
    from manymodels.scoring.plan import _columns  # plan imports this module

    used = [schemas[i] for i in sorted({u.schema for u in units})]
    try:
        return _columns(df, positions, used, source=source, alias=alias)
    except DataError:
        if fallback_rows:
            refuse_fallback_columns(df, reg, schemas, units, source=source, alias=alias)
        raise


def refuse_fallback_columns(
    df: pd.DataFrame,
    reg: Registry,
    schemas: Sequence[FeatureSchema],
    units: Sequence[ModelRef],
    *,
    source: str,
    alias: str,
) -> None:
    """``DataError`` naming the fallback and the spec that trained it when the rows it
    scores (``units[-1]``) lack columns only it reads. A registry has one fallback, trained
    by the spec of its partitions that trained first; a table of another spec keyed alike
    (its keys new to the registry) was refused for "feature column(s) 'temp' that the
    'production' models were trained on", naming neither the fallback nor its spec, as if
    the table were wrong for its own spec. Returns (the plain error stands) when the
    partitions' own models lack columns too. Two primary-key reads and one page of runs."""
    from manymodels.scoring.calendar_columns import with_calendar
    from manymodels.scoring.plan import _columns  # plan imports this module

    fallback, own = units[-1], sorted({u.schema for u in units[:-1]})
    if fallback.schema in own:
        return
    try:
        _columns(df, np.zeros(0, dtype=np.int64), [schemas[i] for i in own], source=source,
                 alias=alias)  # fmt: skip
    except DataError:
        return
    schema = schemas[fallback.schema]
    names = [name for name, _ in feature_kinds(schema) if name not in df.columns]
    names = [n for n in names if n not in with_calendar(df, names, [schema], source=source)]
    made_by = reg.store.get_run(reg.store.get_version(fallback.key, fallback.version).run_id)
    others = sorted({r.spec_name for r in reg.store.list_runs(limit=50)} - {made_by.spec_name})
    also = (
        f"; the registry also holds spec(s) {', '.join(map(repr, others))}, which have no "
        "fallback of their own here (train such a spec into a registry of its own)"
        if others
        else ""
    )
    raise DataError(
        f"{source}: rows of partitions with no '{alias}' model go "
        f"to the registry's fallback (v{fallback.version}, trained by spec "
        f"'{made_by.spec_name}'), which reads column(s) {', '.join(map(repr, names))} the "
        f"table lacks (table has: {', '.join(map(str, df.columns))}){also}; skip_unknown "
        "(--skip-unknown) leaves their rows unscored"
    )
