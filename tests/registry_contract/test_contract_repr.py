"""A registry's repr never shows a database password: it lands in logs and tracebacks."""

from __future__ import annotations

from pathlib import Path

from manymodels.registry import Registry


def test_the_repr_names_the_database_without_its_password(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("postgresql"):
        # The test server trusts local connections, so any password is accepted.
        db_url = db_url.replace("postgres@", "postgres:s3cr3t-pw@", 1)
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        shown = repr(reg)
    assert "s3cr3t-pw" not in shown
    assert shown.startswith("Registry(db=")
    assert ("registry.db" in shown) if db_url.startswith("sqlite") else ("postgres:***@" in shown)
