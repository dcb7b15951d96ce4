"""Schema 8: ``aliases.version_created_at``, the creation time of the version an alias points
at, and ``ix_aliases_age`` (alias, version_created_at, key) over it, so that the partitions by
model age (``ranked_partitions("age")``, the monitor's ``sort=age``) walk production's versions
alone, not every version superseded before them. Filled here from the versions the aliases
point at (one primary-key probe per alias), then written with every move."""

import sqlalchemy as sa
from alembic import op

revision = "8"
down_revision = "7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("aliases", sa.Column("version_created_at", sa.String(32)))
    op.execute(
        "UPDATE aliases SET version_created_at = (SELECT model_versions.created_at FROM "
        "model_versions WHERE model_versions.key = aliases.key "
        "AND model_versions.version = aliases.version)"
    )
    op.create_index("ix_aliases_age", "aliases", ["alias", "version_created_at", "key"])


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
