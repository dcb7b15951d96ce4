"""Schema 2: ``model_versions.data_sha256``, the training rows kept for appending retrains.
Versions registered before it have none (they retrain from the posted rows alone)."""

import sqlalchemy as sa
from alembic import op

revision = "2"
down_revision = "1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("data_sha256", sa.String(64)))


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
