"""Schema 13: ``holiday_sets``, each distinct set of a spec's holidays once, keyed by its
sha256: a version's forecast plan names its set by hash (``manymodels.holiday_sets``) where
it held every date (405 dates: 5.3 kB of each version's feature schema). Versions written
before keep their dates inline, and are read as before."""

import sqlalchemy as sa
from alembic import op

revision = "13"
down_revision = "12"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holiday_sets",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("dates_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
