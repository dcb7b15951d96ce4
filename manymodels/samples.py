"""Realistic sample data for demos, docs, tests and benchmarks.

Every generator builds partitions whose input-to-target relationships genuinely differ,
because that is the whole case for one model per partition over one global model.
Everything is deterministic from ``seed``, and the small samples are rounded like real
measurements, so the committed CSVs in ``data-samples/`` can be checked against a fresh
generation. Only numpy and pandas are used: importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["sensor_readings", "store_sales", "synthetic", "user_activity"]

_START = pd.Timestamp("2024-01-01")  # a Monday
_SITES: tuple[tuple[str, float], ...] = (("houston", 8.0), ("rotterdam", -4.0), ("pune", 11.0))
_SHORT_WEEKS = 10


def store_sales(
    n_stores: int = 12,
    brands: tuple[str, ...] = ("tropicana", "minute_maid", "dominicks"),
    weeks: int = 60,
    seed: int = 0,
) -> pd.DataFrame:
    """Weekly orange-juice sales per store x brand, in the spirit of the Dominick's data.

    Log-units follow a demand curve of the partition's own: its level, price elasticity,
    promotion and feature-ad lifts, plus a store-specific yearly season. A global model on
    (price, deal, feat) cannot fit them all. Two partitions are new products with only the
    last 10 weeks of history, so they fall below ``min_rows = 20`` and go to the fallback.
    """
    if n_stores < 1 or not brands or weeks < 1:
        raise ValueError("need n_stores >= 1, at least one brand and weeks >= 1")
    rng = np.random.default_rng(seed)
    n_b = len(brands)
    n_p = n_stores * n_b
    store = np.repeat(np.arange(1, n_stores + 1), n_b)
    b_idx = np.tile(np.arange(n_b), n_stores)
    shape = (n_p, weeks)

    # Partition parameters: brand and store effects plus a partition-specific twist.
    ref_price = np.linspace(3.6, 2.0, n_b)[b_idx] * rng.uniform(0.9, 1.12, n_stores)[store - 1]
    level = (
        6.0
        + np.linspace(0.4, -0.2, n_b)[b_idx]
        + rng.normal(0.0, 0.35, n_stores)[store - 1]
        + rng.normal(0.0, 0.25, n_p)
    )
    elasticity = rng.uniform(-3.8, -1.2, n_p)
    deal_lift = rng.uniform(0.05, 0.45, n_p)
    feat_lift = rng.uniform(0.1, 0.6, n_p)
    season_amp = rng.uniform(0.05, 0.3, n_stores)[store - 1]
    season_phase = rng.uniform(0.0, 2 * np.pi, n_stores)[store - 1]
    deal_rate = rng.uniform(0.12, 0.3, n_b)[b_idx]

    # Weekly draws: promotions cut the price; feature ads mostly accompany a deal.
    deal = rng.random(shape) < deal_rate[:, None]
    feat = (deal & (rng.random(shape) < 0.6)) | (rng.random(shape) < 0.04)
    discount = np.where(deal, rng.uniform(0.1, 0.25, shape), 0.0)
    wobble = rng.normal(0.0, 0.07, shape)
    price = np.round(ref_price[:, None] * (1 + wobble) * (1 - discount), 2)
    t = np.arange(weeks)
    log_units = (
        level[:, None]
        + elasticity[:, None] * np.log(price / ref_price[:, None])
        + deal_lift[:, None] * deal
        + feat_lift[:, None] * feat
        + season_amp[:, None] * np.sin(2 * np.pi * t / 52 + season_phase[:, None])
        + rng.normal(0.0, 0.12, shape)
    )
    units = np.maximum(np.round(np.exp(log_units), 1), 0.1)

    keep = np.ones(shape, dtype=bool)
    short = rng.choice(n_p, size=min(2, n_p - 1), replace=False)
    keep[short, : max(weeks - _SHORT_WEEKS, 0)] = False

    dates = pd.date_range(_START, periods=weeks, freq="7D")
    frame = pd.DataFrame(
        {
            "store": np.repeat(store, weeks).astype(np.int64),
            "brand": np.repeat(np.asarray(brands, dtype=object)[b_idx], weeks),
            "week": np.tile(dates.to_numpy(), n_p),
            "price": price.ravel(),
            "deal": deal.ravel().astype(np.int64),
            "feat": feat.ravel().astype(np.int64),
            "units": units.ravel(),
        }
    )
    frame = frame[keep.ravel()].sort_values(["store", "brand", "week"], kind="stable")
    return frame.reset_index(drop=True)


def _episodes(rng: np.random.Generator, readings: int, tail: int) -> list[tuple[int, int]]:
    """(start, length) of degradation episodes: one inside the validation tail, the rest
    spread over the history, each with healthy rows around it so both classes appear."""
    head = readings - tail
    n_head = max(1, round(readings / 45) - 1)
    slot = head // n_head
    out = []
    for i in range(n_head):
        length = int(np.clip(rng.integers(8, 15), 3, slot - 2))
        out.append((int(rng.integers(i * slot + 1, (i + 1) * slot - length)), length))
    length = int(np.clip(rng.integers(8, 15), 3, tail - 2))
    out.append((int(rng.integers(head + 1, readings - length)), length))
    return out


def _smooth(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    """Slowly wandering noise (6-hour moving average): real sensors drift, not jitter."""
    return np.convolve(rng.normal(0.0, sd, n + 5), np.ones(6) / 6, "valid")


def sensor_readings(n_assets: int = 20, readings: int = 150, seed: int = 0) -> pd.DataFrame:
    """Hourly sensor readings per pump, labelled ``failure_within_24h``, for classification.

    Each pump degrades in episodes that ramp up to a failure and end with a service
    (``hours_since_service`` resets). The label fires when the true vibration or temperature
    crosses the pump's *own* limit; pumps differ in healthy levels, limits and failure mode
    (bearing -> vibration, overheating -> temperature, or both), so a per-asset classifier
    has skill a global one lacks. Every pump has both classes in its last 25% of rows.
    """
    if n_assets < 1 or readings < 20:
        raise ValueError("need n_assets >= 1 and readings >= 20")
    rng = np.random.default_rng(seed)
    tail = readings // 4
    hours = np.arange(readings, dtype=float)
    frames = []
    for a in range(n_assets):
        site, ambient = _SITES[int(rng.integers(len(_SITES)))]
        rpm0, pres0 = rng.uniform(1200, 3600), rng.uniform(2.0, 8.0)
        severity = np.zeros(readings)
        hss = rng.uniform(0, 300) + hours
        for start, length in _episodes(rng, readings, tail):
            end = start + length
            severity[start:end] = np.arange(1, length + 1) / length
            hss[end:] = hours[: readings - end]  # serviced right after the failure
        rpm = rpm0 * (1 + rng.normal(0.0, 0.02, readings) - 0.06 * severity)
        pressure = pres0 + rng.normal(0.0, 0.08, readings) - rng.uniform(0.2, 0.9) * severity

        base_vib = (
            rng.uniform(1.5, 7.0) + rng.uniform(0.001, 0.004) * hss + _smooth(rng, readings, 0.4)
        )
        base_temp = (
            rng.uniform(45.0, 70.0)
            + ambient
            + 0.005 * (rpm - rpm0)
            + 0.01 * hss
            + _smooth(rng, readings, 1.5)
        )
        mode = int(rng.integers(3))  # 0: vibration, 1: temperature, 2: both drive failures
        true = []
        for base, drives, margin in (
            (base_vib, mode != 1, rng.uniform(0.6, 1.5)),
            (base_temp, mode != 0, rng.uniform(3.0, 8.0)),
        ):
            limit = base.max() + margin
            # A driving sensor passes its limit before the episode peaks; the other never does.
            gain = (
                (limit - base.min()) / rng.uniform(0.35, 0.6)
                if drives
                else (limit - base.max()) * rng.uniform(0.3, 0.8)
            )
            true.append((base + gain * severity, limit))
        (vib, vib_limit), (temp, temp_limit) = true
        frames.append(
            pd.DataFrame(
                {
                    "asset": f"pump-{a + 1:03d}",
                    "site": site,
                    "ts": pd.date_range(_START, periods=readings, freq="h"),
                    "temperature": np.round(temp + rng.normal(0.0, 0.8, readings), 2),
                    "vibration": np.round(vib + rng.normal(0.0, 0.15, readings), 3),
                    "pressure": np.round(pressure, 3),
                    "rpm": np.round(rpm, 1),
                    "hours_since_service": np.round(hss, 1),
                    "failure_within_24h": ((vib > vib_limit) | (temp > temp_limit)).astype(
                        np.int64
                    ),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def user_activity(n_users: int = 60, days: int = 45, seed: int = 0) -> pd.DataFrame:
    """Daily activity per user; target ``minutes_active``, for per-user regression.

    Features are same-day counts known when the day closes (no lags, so no leakage). Users
    differ in how long a session or page keeps them, whether notifications pull them in or
    distract them, and whether they live on weekends, so per-user models fit best.
    """
    if n_users < 1 or days < 1:
        raise ValueError("need n_users >= 1 and days >= 1")
    rng = np.random.default_rng(seed)
    shape = (n_users, days)
    pro = rng.random(n_users) < 0.3
    sess_rate = (rng.gamma(2.0, 1.0, n_users) + 0.3) * np.where(pro, 1.5, 1.0)
    weekend_mult = rng.uniform(0.3, 2.0, n_users)
    notif_rate = rng.uniform(0.5, 6.0, n_users)
    notif_pull = rng.uniform(0.0, 0.25, n_users)
    pages_per_session = rng.uniform(2.0, 9.0, n_users) + 2.0 * pro
    min_per_session = rng.uniform(3.0, 15.0, n_users)
    min_per_page = rng.uniform(0.2, 1.5, n_users)
    min_per_notif = rng.uniform(-0.5, 0.8, n_users)
    drift = rng.normal(0.0, 0.006, n_users)

    dates = pd.date_range(_START, periods=days, freq="D")
    weekend = np.broadcast_to(dates.day_of_week.to_numpy() >= 5, shape)
    t = np.arange(days)
    notifications = rng.poisson(np.broadcast_to(notif_rate[:, None], shape))
    lam = (
        sess_rate[:, None]
        * np.exp(drift[:, None] * t)
        * np.where(weekend, weekend_mult[:, None], 1)
        + notif_pull[:, None] * notifications
    )
    sessions = rng.poisson(lam)
    pages = rng.poisson(sessions * pages_per_session[:, None])
    minutes = (
        sessions * min_per_session[:, None]
        + pages * min_per_page[:, None]
        + notifications * min_per_notif[:, None]
        + rng.normal(0.0, 2.0, shape)
    )
    minutes = np.where(sessions > 0, np.round(np.maximum(minutes, 0.5), 2), 0.0)

    return pd.DataFrame(
        {
            "user_id": np.repeat([f"u{i + 1:04d}" for i in range(n_users)], days),
            "plan": np.repeat(np.where(pro, "pro", "free"), days),
            "day": np.tile(dates.to_numpy(), n_users),
            "sessions": sessions.ravel().astype(np.int64),
            "pages": pages.ravel().astype(np.int64),
            "notifications": notifications.ravel().astype(np.int64),
            "weekend": weekend.ravel().astype(np.int64),
            "minutes_active": minutes.ravel(),
        }
    )


def synthetic(
    n_partitions: int,
    rows: int,
    n_features: int = 5,
    task: str = "regression",
    seed: int = 0,
    key_name: str = "pid",
) -> pd.DataFrame:
    """Large synthetic data for benchmarks: ``n_partitions`` x ``rows``, ordered by key then t.

    Each partition has its own linear rule (plus noise for regression; a logistic draw for
    classification, forced to contain both classes). Fully vectorised: the cost is a few
    array operations, not a Python loop, so 100,000 partitions x 20 rows take well under a second.
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', not {task!r}")
    if n_partitions < 1 or n_features < 1 or rows < (2 if task == "classification" else 1):
        raise ValueError("need n_partitions >= 1, n_features >= 1 and enough rows")
    names = [f"x{j}" for j in range(n_features)]
    if key_name in {"t", "y", *names}:
        raise ValueError(f"key_name {key_name!r} clashes with a generated column")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_features, n_partitions, rows))  # one contiguous block per feature
    weights = rng.normal(0.0, 1.0, (n_partitions, n_features))
    score = np.einsum("kpr,pk->pr", x, weights)
    if task == "regression":
        y = score + rng.normal(0.0, 2.0, n_partitions)[:, None] + rng.normal(0.0, 0.5, score.shape)
    else:
        logits = score + rng.normal(0.0, 0.5, n_partitions)[:, None]
        hit = rng.random(score.shape) < 1.0 / (1.0 + np.exp(-logits))
        idx = np.arange(n_partitions)
        hit[idx, logits.argmax(axis=1)] = True
        hit[idx, logits.argmin(axis=1)] = False
        y = hit.astype(np.int64)
    columns: dict[str, np.ndarray] = {
        key_name: np.repeat(np.arange(n_partitions, dtype=np.int64), rows),
        "t": np.tile(np.arange(rows, dtype=np.int64), n_partitions),
    }
    columns.update({name: x[j].reshape(-1) for j, name in enumerate(names)})
    columns["y"] = y.reshape(-1)
    return pd.DataFrame(columns)
