"""Schema 10: ``ix_run_partitions_key`` (key, status, data_fingerprint) over
``run_partitions``, so that ``train --changed-only`` (and ``retrain --when``, a schedule's
``when = ["changed"]``) finds by key whether a partition without a version was skipped (below
``min_rows``) on the data it has now, under the same spec: a lookup per changed partition, not
a scan of every run's outcomes, nor of every run that skipped it on other data (a small
partition growing a row a day is skipped at every run). Before, such a partition never had a
version to compare with and was trained (and skipped) again at every run."""

from alembic import op

revision = "10"
down_revision = "9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = ["key", "status", "data_fingerprint"]
    op.create_index("ix_run_partitions_key", "run_partitions", columns)


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
