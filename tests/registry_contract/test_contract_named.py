"""Reads of named keys (``registry/named.py``), alike on SQLite and PostgreSQL: the rows of
the keys asked for and no others, key values with the types they were recorded with."""

from __future__ import annotations

from factories import make_run, new_version

from manymodels.partition import FALLBACK_KEY
from manymodels.registry import Registry


def test_named_reads_answer_for_the_keys_named_only(reg: Registry) -> None:
    sha, size = reg.artifacts.put(b"model-bytes")
    versions = [
        new_version("code=0", sha, size, key_values={"code": 0}),
        new_version("code=005", sha, size, key_values={"code": "005"}),
        new_version(FALLBACK_KEY, sha, size, key_values={}),
    ]
    reg.store.create_run(make_run("r1", n_partitions=3))
    reg.store.record("r1", versions, [], libraries={}, promote=lambda v: "first")
    assert reg.store.alias_versions(["code=005", "code=5", "code=005"]) == {"code=005": 1}
    assert reg.store.alias_versions([]) == {}
    assert reg.store.alias_versions(["code=0"], "nightly") == {}
    assert reg.has_fallback()
    assert reg.store.key_values_of(["code=0", "code=005", "code=7"]) == {
        "code=0": {"code": 0},
        "code=005": {"code": "005"},
    }
    assert not reg.store.alias_in_use("nightly")
    reg.set_alias(FALLBACK_KEY, "nightly", 1, reason="the fallback's alone")
    assert not reg.store.alias_in_use("nightly")  # the fallback's does not count
    reg.set_alias("code=0", "nightly", 1, reason="test")
    assert reg.store.alias_in_use("nightly")
    assert reg.store.alias_versions(["code=0", "code=005"], "nightly") == {"code=0": 1}
