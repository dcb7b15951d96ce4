"""The dashboard's Health view, "Load more" clicked in a real Chromium while drift moves a
partition to the top between two pages: the view shows each partition once, and one sampled
too little to be scored says how many rows it has of the 50 drift needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browserkit import Driven, view
from factories import spec_dict
from test_monitor_pages import N, samples

from manymodels.monitoring import report, store
from manymodels.monitoring.drift import MIN_DRIFT_ROWS
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from serving.local import running_server
from serving.settings import Settings

ROWS = "[...document.querySelectorAll('#health tbody tr')].map((r) => r.dataset.key)"
# one partition's drift cell, its text and title (a function of the key, as JSON)
DRIFT = (
    "((key) => { const td = [...document.querySelectorAll('#health tbody tr')]"
    ".find((r) => r.dataset.key === key)?.querySelector('td.drift');"
    " return td ? [td.textContent, td.title] : null; })"
)
TOO_FEW = (
    "drift is scored from {} sampled rows of traffic on; this partition's routers have sampled 10"
)


@pytest.mark.slow  # training, a real router and a real Chromium (~10 s)
def test_load_more_continues_after_the_last_row_shown(chromium: str, tmp_path: Path) -> None:
    """Pages of 5 by drift; between the first page and "Load more", a partition without a
    score (too few sampled rows) drifts to the top. By offset, the second page began with the
    first page's last row again: the view listed it twice. Now it continues after it. The
    two left unscored read "— (10/50 rows)", drift's minimum as the cell's title: a bare "–"
    read as if their traffic had not been looked at (``manymodels monitor`` said so already)."""
    root = tmp_path / "r"
    spec = spec_dict(features=["x0", "x1", "x2"], fallback={"enabled": True})
    with Registry(root) as reg:
        train(spec, synthetic(N, 30, n_features=3), reg, backend="local")
        keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
        batch = [samples(reg, k, 200, shift=i % 7) for i, k in enumerate(keys[:12])]
        batch += [samples(reg, k, 10, shift=3) for k in keys[12:15]]  # no score yet
        store.add_samples(reg.store.engine, batch)
        whole = [r.key for r in report.ranked(report.health(reg.store.engine), "drift")]
    risen = whole[12]
    with (
        running_server(Settings(registry=root)) as url,
        Driven(chromium, view(url, health="drift", limit="5"), tmp_path) as page,
    ):
        page.wait_for("document.body?.dataset.state === 'ready'")
        first = page.evaluate(ROWS)
        assert first == whole[:5]
        with Registry.open(root) as reg:
            store.add_samples(reg.store.engine, [samples(reg, risen, 500, shift=4)])
        page.evaluate("document.querySelector('#health-more').click()")
        shown = page.wait_for(f"(() => {{ const k = {ROWS}; return k.length > 5 && k; }})()")
        assert not page.evaluate("document.querySelector('#health-more').hidden")
        while not page.evaluate("document.querySelector('#health-more').hidden"):
            before = page.evaluate(f"{ROWS}.length")
            page.evaluate("document.querySelector('#health-more').click()")
            page.wait_for(f"{ROWS}.length > {before}")
        cell = {k: page.evaluate(f"{DRIFT}({json.dumps(k)})") for k in keys}
    assert isinstance(shown, list)
    assert len(shown) == len(set(shown)), shown  # each partition once
    assert shown == whole[:10], shown
    # too few sampled rows to be scored: how many, of how many drift needs; not a bare "–"
    for k in keys[12:15]:
        if k != risen:
            assert cell[k] == [f"— (10/{MIN_DRIFT_ROWS} rows)", TOO_FEW.format(MIN_DRIFT_ROWS)]
    assert cell[keys[-1]] == ["–", ""], cell  # never sampled: nothing to say of it
    assert "—" not in str(cell[risen]) and "—" not in str(cell[keys[0]]), cell  # scored
