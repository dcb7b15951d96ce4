"""Schema 3: ``model_versions.signature``. Versions registered before signing have none:
``manymodels sign`` signs them."""

import sqlalchemy as sa
from alembic import op

revision = "3"
down_revision = "2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("signature", sa.String(128)))


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
