"""``pipeline.train`` given a ``RegistryLocation`` (a database and an artifact store named
apart, not opened): opened, and made if new, once the data is read and checked, as a path
is; only read before then, for another run of the spec training (``refuse_before_reading``)
(manymodels.registry.registry_location)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from factories import ago, linear_frame, mark_running, other_machine_tag, spec_dict

import manymodels as mm
from manymodels.exceptions import DataError, RunBusy
from manymodels.registry import Registry, RegistryLocation
from manymodels.signing import Signer

SIGNER = Signer(b"a-signing-key-of-32-characters!!")


def apart(
    tmp_path: Path,
    signer: Signer | None = None,
    on_open: Callable[[Registry], None] | None = None,
) -> RegistryLocation:
    """A location under tmp_path/x, which does not exist yet."""
    x = tmp_path / "x"
    db = f"sqlite:///{x / 'r.db'}"
    return RegistryLocation(db_url=db, artifacts=x / "art", signer=signer, on_open=on_open)


def test_bad_data_makes_nothing_and_good_data_trains_into_the_location(tmp_path: Path) -> None:
    opened: list[Registry] = []
    where = apart(tmp_path, signer=SIGNER, on_open=opened.append)
    no_target = linear_frame(2, 30).drop(columns="y")
    with pytest.raises(DataError, match="missing column"):
        mm.train(spec_dict(), no_target, registry=where, backend="local")
    with pytest.raises(DataError, match="no rows"):
        mm.train(spec_dict(), linear_frame(2, 30).iloc[:0], registry=where, backend="local")
    assert not (tmp_path / "x").exists() and opened == []
    summary = mm.train(spec_dict(), linear_frame(2, 30), registry=where, backend="local")
    assert summary.run.n_trained == 2
    assert len(opened) == 1  # the writer's opening alone: not the look before reading
    with where.open_existing() as reg:
        assert reg.count_partitions() == 3  # pid=0, pid=1 and the fallback
        assert reg.signed_by == SIGNER.key_id  # the location's signer signed them
    assert mm.train(spec_dict(), linear_frame(2, 31), registry=where, backend="local").run
    assert len(opened) == 2


def test_a_run_of_the_spec_training_is_refused_before_the_data_is_read(tmp_path: Path) -> None:
    """Refused naming the busy run, not the table it cannot read: the location was read
    (opened, nothing made) before the data."""
    where = apart(tmp_path)
    first = mm.train(spec_dict(), linear_frame(2, 30), registry=where, backend="local")
    with where.open_existing() as reg:
        mark_running(reg, first.run.run_id, other_machine_tag(), ago(5))
    unreadable = tmp_path / "broken.csv"
    unreadable.write_text("not,the,columns\n1,2,3\n")
    with pytest.raises(RunBusy) as refused:
        mm.train(spec_dict(), unreadable, registry=where, backend="local")
    assert refused.value.run_id == first.run.run_id


def test_a_reader_makes_nothing_and_a_registry_given_stays_open(tmp_path: Path) -> None:
    from manymodels.exceptions import NoRegistry

    where = apart(tmp_path)
    with pytest.raises(NoRegistry):
        where.open_existing()
    assert not (tmp_path / "x").exists()
    with where.open() as reg:  # a writer's opening makes it
        mm.train(spec_dict(), linear_frame(2, 30), registry=reg, backend="local")
        assert reg.count_partitions() == 3  # pid=0, pid=1, the fallback: the caller's, still open


def test_the_repr_names_the_database_without_its_password(tmp_path: Path) -> None:
    """As ``Registry``'s does: a location is an argument of ``train``, shown in tracebacks."""
    url = "postgresql+psycopg://mm:s3cr3t-pw@db.example:5432/mm?password=s3cr3t-pw"
    where = RegistryLocation(db_url=url, artifacts="s3://bucket/models", signer=SIGNER)
    shown = repr(where)
    assert "s3cr3t-pw" not in shown and "s3cr3t-pw" not in str(where)
    assert shown.startswith("RegistryLocation(") and "mm:***@db.example" in shown, shown
    assert "s3://bucket/models" in shown


def test_a_location_is_not_pickled_as_a_registry_is_not(tmp_path: Path) -> None:
    """``Registry`` refuses pickling (its key and the database password would go wherever
    pickles go: Ray spills them to disk); a location pickled with both, the password whole.
    Refused now in one line naming what to pass instead, without the password or the key;
    nothing sends one to another process. ``copy.copy`` still works."""
    import copy
    import pickle

    url = "postgresql+psycopg://mm:s3cr3t-pw@db.example:5432/mm"
    where = RegistryLocation(db_url=url, artifacts="s3://bucket/models", signer=SIGNER)
    for dump in (pickle.dumps, copy.deepcopy):
        with pytest.raises(TypeError) as refused:
            dump(where)
        said = str(refused.value)
        assert said == (
            "a RegistryLocation is not pickled (its signing key and database password stay in "
            "this process): pass its database URL (postgresql+psycopg://mm:***@db.example:5432/"
            "mm) and its artifact store (s3://bucket/models) and make it where it is used"
        )
    with pytest.raises(TypeError, match=r"pass its directory \(.*reg\) and make it"):
        pickle.dumps(RegistryLocation(root=tmp_path / "reg"))
    copied = copy.copy(where)
    assert copied == where and copied.signer is SIGNER
