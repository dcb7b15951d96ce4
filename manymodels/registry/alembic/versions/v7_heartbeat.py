"""Schema 7: ``runs.heartbeat_at``, written every ``manymodels.heartbeat.EVERY_SECONDS`` by
the process running a run (``manymodels.heartbeat``), so that a run whose process died on
another machine — where its pid cannot be looked up — reads as silent rather than running,
and a resume from elsewhere is refused while the run is alive. Runs recorded before it have
none, and no claim is made about them."""

import sqlalchemy as sa
from alembic import op

revision = "7"
down_revision = "6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("heartbeat_at", sa.String(32)))


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
