"""Schema 9: on PostgreSQL, every partition key column in code-point order (``COLLATE "C"``,
``schema.KEY``), whatever the database's locale: the registry's pages compare keys in Python
too, and under a linguistic collation (``en_US.UTF-8``, ICU) a run's failures came back
repeated and skipped, and a ``prefix`` ending in ``9``, ``z``, ``,`` or ``%`` found nothing.

Only the collation changes (the same ``varchar(512)``): PostgreSQL rewrites no row, and
rebuilds the indexes over these columns (their order is what changes). SQLite compares text
bytewise already: nothing to do there but record the version."""

from alembic import op

from manymodels.keys import MAX_KEY_CHARS

revision = "9"
down_revision = "8"
branch_labels = None
depends_on = None

KEY_COLUMNS = (
    ("partitions", "key"),
    ("model_versions", "key"),
    ("aliases", "key"),
    ("alias_history", "key"),
    ("run_partitions", "key"),
    ("monitor_drift", "key"),
    ("monitor_actuals", "key"),
    ("jobs", "partition"),
    ("jobs", "active_partition"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in KEY_COLUMNS:
        op.execute(
            f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE VARCHAR({MAX_KEY_CHARS}) COLLATE "C"'
        )


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
