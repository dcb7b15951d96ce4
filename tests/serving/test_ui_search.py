"""The dashboard's key search (``serving/ui/api.js``: ``canonicalPrefix``) in a real headless
Chromium over a real router: a key that holds a "%" is found as typed, and text copied
from a canonical key is still searched as it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browserkit import browse, page_state, row_keys, view
from factories import spec_dict

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

# "50%off" is "pid=50%25off" canonically, "50 off" "pid=50%20off", "café" "pid=caf%C3%A9",
# "caf€" "pid=caf%E2%82%AC"
PIDS = ("50%off", "50 off", "other", "café", "caf€")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        [
            {"pid": pid, "t": t, "x0": rng.normal(), "y": rng.normal()}
            for pid in PIDS
            for t in range(30)
        ]
    )
    spec = {**spec_dict(features=["x0"]), "partition_by": ["pid"]}
    root = tmp_path_factory.mktemp("percent") / "r"
    with Registry(root) as reg:
        assert train(spec, frame, reg, backend="local").run.n_failed == 0
    return root


@pytest.mark.slow  # training, a real router and a real Chromium (~10 s)
def test_a_search_with_a_percent_finds_the_key_that_holds_it(
    chromium: str, root: Path, tmp_path: Path
) -> None:
    """ "pid=50%off" was taken as canonical text (already percent-encoded) and matched no key:
    the list said no partition. Now a "%" that starts no escape is a character of the key, as
    any other typed one; a canonical copy ("pid=50%25off", or cut inside an escape) is kept."""
    searches = {
        "pid=50%off": ["pid=50%25off"],
        "pid=50%": ["pid=50%25off"],
        "pid=50%25off": ["pid=50%25off"],  # copied from the key (its title)
        "pid=50%2": ["pid=50%20off", "pid=50%25off"],  # a copy cut inside an escape
        "pid=50 ": ["pid=50%20off"],
    }
    with running_server(Settings(registry=root)) as url:
        for typed, expected in searches.items():
            dom = browse(chromium, view(url, q=typed), tmp_path)
            assert page_state(dom) == "ready", (typed, dom[-2000:])
            assert row_keys(dom) == expected, typed


@pytest.mark.slow  # training, a real router and a real Chromium (~10 s)
def test_a_copy_cut_inside_a_character_of_several_bytes_finds_its_key(
    chromium: str, root: Path, tmp_path: Path
) -> None:
    """ "pid=caf%C3", a copy of "pid=caf%C3%A9" (café) cut between the two escapes of "é",
    did not decode (half a UTF-8 character), was taken for typed text ("pid=caf%25C3") and
    found nothing. What is complete is checked now, and the cut character searched as the
    bytes it starts with."""
    searches = {
        "pid=caf%C3": ["pid=caf%C3%A9"],
        "pid=caf%C3%A": ["pid=caf%C3%A9"],  # … and inside the escape after it
        "pid=caf%E2%82": ["pid=caf%E2%82%AC"],  # two of three bytes
        "pid=caf%E2": ["pid=caf%E2%82%AC"],
        "pid=caf%": [],  # a "%" typed: no key holds "caf%"
    }
    with running_server(Settings(registry=root)) as url:
        for typed, expected in searches.items():
            dom = browse(chromium, view(url, q=typed), tmp_path)
            assert page_state(dom) == "ready", (typed, dom[-2000:])
            assert row_keys(dom) == expected, typed
