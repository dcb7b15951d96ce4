"""The registry's pages in one order on every database: code-point order (Python's ``sorted``),
whatever the PostgreSQL database's collation.

A PostgreSQL installed under a locale (``en_US.UTF-8``, most installations' default, or ICU)
orders text linguistically: "s=9" before "s=:", "s=a," after "s=a-", "s=a" beside "s=A". A
keyset page ``key > :after ORDER BY key`` stays consistent in such a database, but the registry
also compares keys in Python: ``run_failures`` merges a range per status with ``sorted``, and a
``prefix`` is the range ``prefix <= key < prefix_upper(prefix)`` of the code-point order. Under
ICU ``en-US`` a run's failures came back repeated and skipped page after page (3,000 outcomes
walked as 4,038 rows, 939 never seen) and ``prefix="s=9"`` found nothing of 147 keys.

Each test runs on SQLite, on PostgreSQL of the bytewise collation the other contract tests use,
and on a database of ICU's ``en-US`` collation (``icu_postgres``: a server built with ICU).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from factories import make_run, new_version
from pgcluster import PostgresServer
from sqlalchemy import create_engine, text

from manymodels.monitoring.pages import page_keys
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.entities import PartitionOutcome
from manymodels.registry.migrations import alembic_config

LIBS = {"python": "3.11"}
# what a canonical key's value may hold: letters of either case, digits, the characters
# ``keys.quote_text`` leaves as they are, and percent-encodings (of "," and of "é")
PIECES = ["a", "A", "b", "z", "Z", "0", "1", "9", "10", "-", "_", ".", "~", ":", "%2C", "%C3%A9"]
PREFIXES = ["s=9", "s=z", "s=Z", "s=10,", "s=a-", "s=%", "s=a%2C", "s=~", "s=1", "s=A", "s="]
PAGE = 23


def adversarial_keys() -> list[str]:
    """Every two-piece value of ``PIECES``, alone and with a second column: 512 keys."""
    values = ["".join(p) for p in itertools.product(PIECES, repeat=2)]
    rnd = random.Random(5)
    return sorted({f"s={v}" for v in values} | {f"s={v},b={rnd.choice(PIECES)}" for v in values})


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-icu"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        return server.database()
    server = request.getfixturevalue("icu_postgres")
    return server.database(icu_locale="en-US")


@pytest.fixture
def filled(any_url: str, tmp_path: Path) -> Iterator[tuple[Registry, list[str]]]:
    """A registry holding ``adversarial_keys``, each in production with the same score (ties
    are ordered by key), and a run ``r2`` in which each one failed or was skipped."""
    keys = adversarial_keys()
    with Registry(tmp_path / "registry", db_url=any_url) as reg:
        sha, size = reg.artifacts.put(b"model")
        reg.store.create_run(make_run("r1", n_partitions=len(keys)))
        reg.store.record("r1", [new_version(k, sha, size) for k in keys], [], libraries=LIBS)
        reg.store.create_run(make_run("r2", n_partitions=len(keys)))
        outcomes = [PartitionOutcome(k, ("failed", "skipped")[i % 3 == 0], "E", "m")
                    for i, k in enumerate(keys)]  # fmt: skip
        reg.store.record("r2", [], outcomes, libraries=LIBS)
        yield reg, keys


def walk(page: Callable[[str | None], Sequence[Any]]) -> list[str]:
    """Every key a keyset listing gives, page after page (``page(after)``), in order."""
    seen: list[str] = []
    after = None
    while True:
        got = [item.key for item in page(after)]
        seen += got
        if len(got) < PAGE or len(seen) > 10_000:  # a walk that never ends is a failure too
            return seen
        after = got[-1]


def test_every_listing_walks_each_key_once_in_code_point_order(
    filled: tuple[Registry, list[str]],
) -> None:
    reg, keys = filled
    assert walk(lambda after: reg.list_partitions(limit=PAGE, after=after)) == keys
    by_offset = [p.key for o in range(0, len(keys) + PAGE, PAGE)
                 for p in reg.list_partitions(limit=PAGE, offset=o)]  # fmt: skip
    assert by_offset == keys
    for by in ("skill", "score", "age"):  # one value each: ties, by key
        assert walk(lambda after, by=by: reg.ranked_partitions(by, limit=PAGE, after=after)) == keys
    assert walk(lambda after: reg.run_failures("r2", limit=PAGE, after=after)) == keys
    engine = reg.store.engine
    for sort in ("key", "age", "drift"):  # no drift recorded: every partition unscored, by key
        pages = [page_keys(engine, sort, PAGE, o)[0] for o in range(0, len(keys) + PAGE, PAGE)]
        assert [k for p in pages for k in p] == keys, sort


def test_a_prefix_finds_every_key_that_starts_with_it(filled: tuple[Registry, list[str]]) -> None:
    reg, keys = filled
    for prefix in PREFIXES:
        want = [k for k in keys if k.startswith(prefix)]
        assert want, prefix
        got = walk(lambda after, p=prefix: reg.list_partitions(limit=PAGE, after=after, prefix=p))
        assert got == want, prefix
        ranked = walk(lambda after, p=prefix: reg.ranked_partitions(
            "score", limit=PAGE, after=after, prefix=p))  # fmt: skip
        assert ranked == want, prefix
        failures = walk(lambda after, p=prefix: reg.run_failures(
            "r2", limit=PAGE, after=after, prefix=p))  # fmt: skip
        assert failures == want, prefix


def test_a_schema_8_registry_is_upgraded_to_code_point_order(any_url: str, tmp_path: Path) -> None:
    """A registry made before schema 9 on a database of a linguistic collation: its key
    columns take the bytewise one on opening, with their rows, and a prefix finds them."""
    keys = adversarial_keys()
    engine = create_engine(any_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "8")
        conn.execute(t.meta.insert().values(name="schema_version", value="8"))
        stamp = "2026-01-01T00:00:00+00:00"
        conn.execute(
            t.partitions.insert(),
            [{"key": k, "key_json": "{}", "latest_version": 0, "created_at": stamp,
              "updated_at": stamp} for k in keys],
        )  # fmt: skip
    engine.dispose()
    root = tmp_path / "registry"
    (root / "artifacts").mkdir(parents=True)
    with Registry.open(root, db_url=any_url) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION
        assert walk(lambda after: reg.list_partitions(limit=PAGE, after=after)) == keys
        for prefix in PREFIXES:
            got = [p.key for p in reg.list_partitions(limit=len(keys), prefix=prefix)]
            assert got == [k for k in keys if k.startswith(prefix)], prefix
        if reg.store.engine.dialect.name == "postgresql":
            with reg.store.engine.connect() as conn:
                collations = conn.execute(text(
                    "SELECT table_name, column_name, collation_name FROM "
                    "information_schema.columns WHERE table_schema = 'public' AND "
                    "character_maximum_length = 512"
                )).all()  # fmt: skip
            assert len(collations) == 9
            assert {c for _, _, c in collations} == {"C"}, collations
