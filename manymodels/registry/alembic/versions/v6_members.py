"""Schema 6: ``model_versions.members_json``, the global models a version's artifact names
(an ensemble's members, stored once: ``manymodels.global_members``), so that ``gc``, backups
and ``doctor`` see them referenced. Versions registered before it hold their members inside
their own artifact, and name none."""

import sqlalchemy as sa
from alembic import op

revision = "6"
down_revision = "5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("members_json", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
