"""Schema migrations: the package's alembic revisions are the schema versions, and opening an
up-to-date registry never imports alembic (read-only commands stay fast). Upgrades on every
database are tested in tests/registry_contract/test_contract_migrations.py."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from factories import as_older_schema, linear_frame, spec_dict

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.migrations import SCRIPTS, VERSIONS

OPEN_AND_LIST = """
import sys
from manymodels.registry import Registry
with Registry.open(sys.argv[1]) as reg:
    print(reg.count_partitions(), reg.store.get_meta("schema_version"))
print("alembic" in sys.modules)
"""


def test_the_revisions_are_the_schema_versions_in_a_line() -> None:
    script = ScriptDirectory(str(SCRIPTS))
    assert script.get_current_head() == t.SCHEMA_VERSION == VERSIONS[-1]
    chain = [r.revision for r in script.walk_revisions()]  # head first
    assert chain == list(reversed(VERSIONS))
    assert (SCRIPTS / "env.py").is_file()  # in the package: a wheel carries it


@pytest.mark.slow  # two new processes importing manymodels: ~8 s on a busy machine
def test_only_an_upgrade_imports_alembic(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")

    def open_in_a_new_process() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", OPEN_AND_LIST, str(root)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return out.stdout.split()

    assert open_in_a_new_process() == ["3", t.SCHEMA_VERSION, "False"]
    with sqlite3.connect(root / "registry.db") as conn:  # as manymodels wrote schema 4
        as_older_schema(conn.execute, "4")  # first: a step is on jobs
        conn.execute("DROP TABLE jobs")
        conn.execute("DROP TABLE alembic_version")
    conn.close()
    assert open_in_a_new_process() == ["3", t.SCHEMA_VERSION, "True"]
    with Registry.open(root) as reg:
        assert reg.get_version("pid=0").version == 1
