"""Schema 14: ``monitor_actuals.counted``, the digests of the rows each day window counted
(``manymodels.monitoring.counted``): actuals posted again — a retried request, a cron job run
twice, a file posted again with rows appended — are not counted again while the window that
counted them is kept. Windows written before have none: rows they counted are not known."""

import sqlalchemy as sa
from alembic import op

revision = "14"
down_revision = "13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("monitor_actuals", sa.Column("counted", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
