"""A score table's calendar features, computed from its time column as training computed them
(``with_calendar``): the table a calendar spec trained on scores as it is."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from manymodels import timekeys
from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.row_numbers import counted_row


def with_calendar(
    df: pd.DataFrame, missing: Sequence[str], schemas: Sequence[FeatureSchema], *, source: str
) -> pd.DataFrame:
    """``df`` with the calendar parts among ``missing`` computed from its time column, as
    training computed them (``data.add_calendar``: the ISO 8601 times parsed, then
    ``timefeatures.calendar_values``): they are the time's own, so the table a calendar spec
    trained on scores as it is. It was refused for lacking them, where the router computes
    them from a row's time. Times with a UTC offset are read on the version's clock (its
    series' zone, as training's times were and as the router converts a row's): a CSV in UTC
    of a model trained in Europe/Berlin had its 23:30 Wednesday where training had Thursday.

    Times of the other kind than the series' — without a UTC offset where its times have
    one, or with one where they have none — are refused as ``LoadedModel.predict``, the
    router and ``forecast``'s future table refuse them (in the router's words): a wall time
    without its offset is no instant of a series in a zone (a Berlin 02:30 on the night
    clocks go forward is none at all), and was scored here while ``predict`` refused it."""
    # feature → (time column, calendar part, the series' zone, whether its times are aware)
    parts: dict[str, tuple[str, str, str | None, bool]] = {}
    for schema in schemas:
        if schema.forecast is not None and schema.time_column is not None:
            zone = schema.forecast.timezone
            last = schema.history.time if schema.history is not None else None
            aware = timekeys.series_clock(zone, last) is not None
            for name, part in schema.forecast.calendar.items():
                parts.setdefault(name, (str(schema.time_column), str(part), zone, aware))
    wanted = {name: parts[name] for name in missing if name in parts and parts[name][0] in df}
    if not wanted:
        return df
    from manymodels.data import calendar_parts
    from manymodels.timecolumn import parse_time

    added: dict[str, np.ndarray] = {}
    clocks = dict.fromkeys((time, zone, aware) for time, _, zone, aware in wanted.values())
    for column, zone, aware in clocks:
        # a zone's times as text (a CSV) carry two offsets across a change of clocks: the
        # instants they name are read on the series' clock below
        times = parse_time(df[[column]], column, source=source, instants=aware)[column]
        if len(times) and (getattr(times.dtype, "tz", None) is not None) != aware:
            raise _other_kind(df[column], times, column, zone, aware, source=source)
        if zone is not None and aware:
            times = times.dt.tz_convert(zone)
        names = {
            n: part
            for n, (time, part, z, a) in wanted.items()
            if (time, z, a) == (column, zone, aware)
        }
        added |= calendar_parts(times, names, source=source)
    return df.assign(**added)


def _other_kind(
    given: pd.Series, times: pd.Series, column: str, zone: str | None, aware: bool, *, source: str
) -> DataError:
    """The refusal of a time column of the other kind than the series' times, naming its
    first dated row (counting from 1, as scoring's other refusals do) in the words
    ``LoadedModel.predict`` and the router use for such a row."""
    at = int(np.flatnonzero(times.notna().to_numpy())[0]) if times.notna().any() else 0
    value = given.iloc[at]
    hint = timekeys.zone_hint(value, aware, zone) or timekeys.zone_hint(times.iloc[at], aware, zone)
    return DataError(
        f"{source}: {counted_row(at + 1)}: '{column}' {value!r} is not a time of "
        f"the model's series, which its calendar features are read from{hint}"
    )
