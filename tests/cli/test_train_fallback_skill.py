"""`manymodels train` says when the fallback it trained scores worse than naive on its own
validation rows (``training.fallback.worse_than_naive``): naive is no candidate for the pooled
fallback, so a retrained fallback at skill -92 % was promoted on a tie, silently, and every
request for an unknown partition got it. A warning on stderr, never a failure (exit 0)."""

from __future__ import annotations

import re
from pathlib import Path

from factories import linear_frame
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.partition import FALLBACK_KEY
from manymodels.registry import Registry

SAID = re.compile(
    r"^warning: the fallback model scores worse than naive \(skill (-\d+)%\) on its "
    r"validation rows; requests for unknown partitions get it$"
)
# a fallback that answers 1000 for every row: far worse than any naive guess of y (|y| < 40)
CONSTANT = (
    'estimator = "sklearn.dummy.DummyRegressor"\n'
    'params = { strategy = ["constant"], constant = [1000.0] }\n'
)


def _train(here: Path) -> tuple[int, str, str]:
    linear_frame(3, 30).to_csv(here / "rows.csv", index=False)
    args = ["train", "spec.toml", "rows.csv", "--registry", "reg", "--backend", "local"]
    done = CliRunner().invoke(app, args)
    return done.exit_code, done.stdout, done.stderr


def test_a_fallback_worse_than_naive_is_one_warning_line(here: Path) -> None:
    spec = here / "spec.toml"
    spec.write_text(re.sub(r"estimator = .*\nparams = .*\n", CONSTANT, spec.read_text()))
    code, out, err = _train(here)
    assert code == 0, out + err
    lines = [line for line in err.splitlines() if "fallback" in line]
    assert len(lines) == 1 and (m := SAID.match(lines[0])), err
    with Registry.open(here / "reg") as reg:
        skill = reg.get_version(FALLBACK_KEY).skill
        (run,) = reg.list_runs(limit=2)
    assert skill is not None and int(m.group(1)) == round(skill * 100), (skill, lines)
    assert "fallback" not in out  # stderr only: the summary a pipe keeps is unchanged
    # kept on the run: `--json` and `runs show` carry it with the run's other warnings
    assert [f"warning: {w}" for w in run.options["warnings"]] == lines


def test_a_fallback_that_beats_naive_says_nothing(here: Path) -> None:
    code, out, err = _train(here)
    assert code == 0, out + err
    with Registry.open(here / "reg") as reg:
        skill = reg.get_version(FALLBACK_KEY).skill
    assert skill is not None and skill > 0
    assert "fallback" not in err + out, err


def test_a_worse_fallback_left_out_of_production_is_not_said_to_serve(here: Path) -> None:
    """A second train whose constant fallback loses to the Ridge one in production (policy
    ``if_better``): unknown keys keep getting the Ridge fallback, so "requests for unknown
    partitions get it" would be untrue of the version the run trained."""
    assert _train(here)[0] == 0
    spec = here / "spec.toml"
    spec.write_text(re.sub(r"estimator = .*\nparams = .*\n", CONSTANT, spec.read_text()))
    code, out, err = _train(here)
    assert code == 0, out + err
    with Registry.open(here / "reg") as reg:
        newest = reg.get_version(FALLBACK_KEY, 2)
        served = reg.get_version(FALLBACK_KEY)
    assert newest.skill is not None and newest.skill < 0  # worse than naive, yet not served
    assert served.version == 1 and not newest.evaluation["promote"], newest.evaluation
    assert "fallback model scores worse" not in err, err
