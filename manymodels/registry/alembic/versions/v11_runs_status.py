"""Schema 11: ``ix_runs_status`` (status, spec_name) over ``runs``, so that the runs still
marked running (of a spec) are an index range: every schedule firing asks whether a run of
its spec is training now (``run_busy.training_run``), ``gc`` which run may still be writing
(``live_runs_since``), and a run's start whether a run keying the registry otherwise is
training (``_refuse_keys_in_training``). Before, each read every run ever recorded (each
router retrain job records one): at 300,000 runs a firing spent 0.6-1.3 s on it."""

from alembic import op

revision = "11"
down_revision = "10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_status", "runs", ["status", "spec_name"])


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
