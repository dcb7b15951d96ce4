"""The run summary's line on partitions below ``min_rows``: it says what they serve, the
global classifier shifted to their rates only where the spec asks for it
(``[selection] prior_shifted = true``, off by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import train_cli

from manymodels.registry.client import Registry

SPEC = (
    'name = "pumps"\ntask = "classification"\npartition_by = ["asset"]\ntarget = "fail"\n'
    'features = ["temp"]\nmin_rows = 10\n[validation]\nstrategy = "holdout"\nsize = 0.25\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.LogisticRegression"\nscope = "global"\n'
)


def pumps() -> pd.DataFrame:
    """Three assets of 40 rows and one of 6, below ``min_rows``."""
    rng = np.random.default_rng(1)
    rows = []
    for k, n in enumerate([40, 40, 40, 6]):
        temp = rng.normal(50, 10, n)
        label = (temp + rng.normal(0, 5, n) > 50).astype(int)
        rows.append(pd.DataFrame({"asset": f"a{k}", "temp": temp, "fail": label}))
    return pd.concat(rows)


@pytest.mark.slow  # two CLI runs with a global model: ~3-6 s on a busy machine
@pytest.mark.parametrize("shifted", [False, True])
def test_the_summary_says_what_a_small_partition_serves(tmp_path: Path, shifted: bool) -> None:
    """By default a spec with a global classifier serves the bare constant below min_rows:
    the line said "with a global classifier: that model shifted to those rates" all the
    same. Asked for, the shifted model is served, and the line says so, not "→ constant"."""
    text = SPEC.replace("[validation]", "[selection]\nprior_shifted = true\n[validation]")
    result, reg = train_cli(tmp_path, text if shifted else SPEC, pumps())
    assert result.exit_code == 0, result.output
    with Registry(reg) as r:
        small = r.get_version("asset=a3")
    served = small.validation["too_few_rows"].get("served")
    assert (served == "prior_shifted") is shifted
    (line,) = [s for s in result.output.splitlines() if "too few rows" in s]
    assert ("shifted" in line) is shifted, line
    assert ("→ constant" in line) is not shifted, line
