"""Where in the user's table a model refused a row: a scoring task's error as the driver raises it.

A chunk's rows are sorted by partition, so a worker can say which of *its* rows a model refused
(``DataError.chunk_row``) but not which data row of the file that was: "partition 'k' v1 could
not score its 3 row(s): Input X contains NaN" named neither the file nor the row, where every
other refusal of ``score`` names both. The driver holds the plan's positions and does.
"""

from __future__ import annotations

from manymodels.exceptions import DataError, ManyModelsError
from manymodels.row_numbers import data_row
from manymodels.scoring.plan import Plan


def located(error: ManyModelsError, plan: Plan, start: int, source: str) -> ManyModelsError:
    """``error`` naming ``source`` and the data row of the chunk row it carries (``start``:
    where the chunk begins in the plan's row order); any other error as it is."""
    row = getattr(error, "chunk_row", None)
    if not isinstance(error, DataError) or row is None:
        return error
    position = int(plan.positions[start + row])
    return DataError(f"{source}: {data_row(position)}: {error}")
