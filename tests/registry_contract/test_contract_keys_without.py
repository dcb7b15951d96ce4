"""``SqlStore.keys_without`` (``registry/reads.py``), alike on SQLite and PostgreSQL: the first
keys by key order with no version at an alias, the one key left out never read — what a
forecast at an alias names of the partitions it left out."""

from __future__ import annotations

from factories import make_run, new_version

from manymodels.partition import FALLBACK_KEY
from manymodels.registry import Registry


def test_the_first_keys_without_an_alias_in_key_order(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model-bytes")
    keys = [f"code={i}" for i in (4, 1, 3, 2, 0)]
    versions = [new_version(k, sha, size, key_values={"code": k[5:]}) for k in keys]
    versions.append(new_version(FALLBACK_KEY, sha, size, key_values={}))
    reg.store.create_run(make_run("r1", n_partitions=len(versions)))
    reg.store.record("r1", versions, [], libraries={}, promote=lambda v: "first")
    for key in ("code=1", FALLBACK_KEY):
        reg.set_alias(key, "candidate", 1, reason="test")
    without = reg.store.keys_without
    assert without("candidate", but=FALLBACK_KEY, limit=3) == ["code=0", "code=2", "code=3"]
    assert without("candidate", but=FALLBACK_KEY, limit=10) == [
        "code=0", "code=2", "code=3", "code=4"
    ]  # fmt: skip
    # ``but`` is the one key not read: here a partition's, so the fallback's is answered
    assert set(without("nightly", but="code=0", limit=10)) == {FALLBACK_KEY, *keys} - {"code=0"}
    assert without("production", but=FALLBACK_KEY, limit=3) == []
