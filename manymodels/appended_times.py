"""New rows' times held to the kind of a partition's kept rows: ``train --append`` and a
retrain's posted rows (``serving.retrain_rows``), after ``parse_time`` has read them.

Apart from ``timecolumn`` (reading one table's times, which may be of any kind) because this
compares two tables: dates against dates, period numbers against period numbers (whole
where the kept rows' are), a UTC offset where the kept rows have one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels.exceptions import DataError
from manymodels.time_refusals import in_row


def refuse_other_times(
    new: pd.Series,
    column: str,
    *,
    dates: bool,
    aware: bool,
    whole: bool = False,
    source: str | None = None,
) -> None:
    """New rows' times, as ``parse_time`` left them, of the kind a partition's kept rows are:
    dates where those are dates (cast to one, 20250224 became an instant of 1970), numbers
    where they are numbers (period indexes; never booleans, which became periods 0 and 1,
    and whole where they are integers: ``whole``), with a UTC offset where they have one and
    without where they have none. ``DataError`` naming the first time that is not and its
    row (as training's time errors do: a file of thousands of rows is not searched by hand),
    and ``source`` (the appended file) before it: without, ``train --append``'s one line named
    neither the file nor anything but the column. A column of the wrong type is wrong in every
    row, so its first row is named; a fraction among whole periods, its own row (from the
    one vectorised look that finds it)."""
    at = f"{source}: " if source else ""
    is_dates = ptypes.is_datetime64_any_dtype(new)
    has_zone = is_dates and getattr(new.dtype, "tz", None) is not None
    if not dates and ptypes.is_bool_dtype(new):
        raise DataError(
            f"{at}time column '{column}' holds {bool(new.iloc[0])!r}, a boolean, {in_row(0)}, "
            "where the partition's kept rows hold period numbers: send the period numbers"
        )
    if not dates and whole and new.dtype.kind == "f":
        values = new.to_numpy()
        cut = np.flatnonzero(values != np.floor(values))
        if len(cut):
            at_cut = int(cut[0])
            raise DataError(
                f"{at}time column '{column}' holds {values[at_cut].item()!r} {in_row(at_cut)}, "
                "where the partition's kept rows hold whole period numbers"
            )
    if is_dates == dates and has_zone == (aware and dates):
        return
    first = new.iloc[0] if len(new) else None
    first = first.item() if isinstance(first, np.generic) else first
    if dates and not is_dates:
        why = f"holds {first!r}, a number, {in_row(0)}, where the partition's kept rows hold dates"
        fix = "send dates (text such as 2025-02-24)"
    elif is_dates and not dates:
        why = f"holds dates ({first}) {in_row(0)}, where the partition's kept rows hold numbers"
        fix = "send the period numbers the kept rows use"
    elif has_zone:
        why = (
            f"holds times with a UTC offset ({new.dtype.tz}), the first {in_row(0)}, where the "
            "kept rows' have none"
        )
        fix = "send them without an offset, as before"
    else:
        why = (
            f"holds times without a UTC offset, the first {in_row(0)}, where the kept rows' "
            "have a zone"
        )
        fix = "send them with their offset, as before"
    raise DataError(f"{at}time column '{column}' {why}: {fix}")
