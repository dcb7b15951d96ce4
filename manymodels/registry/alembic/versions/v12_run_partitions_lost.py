"""Schema 12: ``ix_run_partitions_lost``, a partial index over ``run_partitions`` holding only
the lost outcomes (``status = 'lost'``), so that the runs ``manymodels doctor``, ``runs abandon``
and the run views call unfinished (``unfinished_runs``) are found without reading every run and
every outcome ever recorded: before, each call scanned ``runs`` and the whole
``ix_run_partitions_status`` index, O(runs x partitions)."""

from alembic import op
from sqlalchemy import text

revision = "12"
down_revision = "11"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lost = text("status = 'lost'")
    op.create_index(
        "ix_run_partitions_lost", "run_partitions", ["status", "run_id"],
        sqlite_where=lost, postgresql_where=lost,
    )  # fmt: skip


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
