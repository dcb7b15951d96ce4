"""Schema 4: the monitoring tables. They start empty: drift and live accuracy accrue from
the upgrade on."""

import sqlalchemy as sa
from alembic import op

revision = "4"
down_revision = "3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # an older manymodels made missing tables on open, so a registry may hold them already
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "monitor_drift" not in present:
        op.create_table(
            "monitor_drift",
            sa.Column("key", sa.String(512), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("rows", sa.Float, nullable=False),
            sa.Column("counts_json", sa.Text, nullable=False),
            sa.Column("score", sa.Float),
            sa.Column("feature", sa.String(256)),
            sa.Column("updated_at", sa.String(32), nullable=False),
        )
        op.create_index("ix_monitor_drift_score", "monitor_drift", ["score"])
    if "monitor_actuals" not in present:
        op.create_table(
            "monitor_actuals",
            sa.Column("key", sa.String(512), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("day", sa.String(10), nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
            sa.Column("abs_error", sa.Float, nullable=False),
            sa.Column("sq_error", sa.Float, nullable=False),
            sa.Column("wrong", sa.Integer, nullable=False),
            sa.Column("naive_abs_error", sa.Float, nullable=False),
            sa.Column("naive_sq_error", sa.Float, nullable=False),
            sa.Column("naive_wrong", sa.Integer, nullable=False),
            sa.Column("last_actual", sa.Text),
            sa.Column("updated_at", sa.String(32), nullable=False),
            sa.PrimaryKeyConstraint("key", "version", "day"),
        )


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
