"""The line of a process whose run another process resumed (``registry.run_takeover``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame, other_machine_tag, spec_dict

from manymodels.data import prepare
from manymodels.exceptions import RunTakenOver
from manymodels.registry import Registry
from manymodels.run_plan import plan_run
from manymodels.spec import Spec


@pytest.mark.parametrize(
    ("host", "said"),
    [("build-7", "process 4242 on host build-7"), (None, "process 4242 on another machine")],
)
def test_a_run_resumed_on_another_host_is_said_to_be_by_that_host(
    tmp_path: Path, host: str | None, said: str
) -> None:
    """A resume records its host beside its owner (``reopen_run``); the process it took the
    run from said "resumed by process 4242 on another machine", not which. A run resumed by
    an older release (no host recorded) is still another machine's."""
    spec = Spec.coerce(spec_dict())
    table, _ = prepare(spec, linear_frame(2, 30))
    with Registry(tmp_path / "reg") as reg:
        plan = plan_run(reg, spec, table, "frame", resume=None, only=None, changed_only=False,
                        notes={})  # fmt: skip
        # as the resume on the other host records it (reopen_run)
        reg.store.record_run_options(plan.run_id, {"owner": other_machine_tag(), "host": host})
        with pytest.raises(RunTakenOver) as taken:  # this process's next write to the run
            reg.store.record_run_options(plan.run_id, {"progress": 1}, owner=plan.owner)
    assert str(taken.value).startswith(f"run {plan.run_id} was resumed by {said} while "), taken
