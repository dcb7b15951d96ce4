"""Schema 5: ``jobs``, the routers' retrain jobs, so that every router replica answers for
every job and one retrain per partition holds across them (``manymodels.registry.jobs``); and
the indexes that order the whole registry for the partitions listing (by skill, score, age)
and a run's failures, so a page of them reads a page, not the table."""

import sqlalchemy as sa
from alembic import op

revision = "5"
down_revision = "4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # an older manymodels made missing tables on open, so a registry may hold them already
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "jobs" not in present:
        op.create_table(
            "jobs",
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("job_id", sa.String(32), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("partition", sa.String(512), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("backend", sa.String(16), nullable=False),
            sa.Column("owner", sa.String(128), nullable=False),
            sa.Column("created_at", sa.String(32), nullable=False),
            sa.Column("started_at", sa.String(32)),
            sa.Column("finished_at", sa.String(32)),
            sa.Column("heartbeat_at", sa.String(32), nullable=False),
            sa.Column("data_json", sa.Text),
            sa.Column("run_id", sa.String(32)),
            sa.Column("version", sa.Integer),
            sa.Column("production", sa.Integer),
            sa.Column("error", sa.Text),
            sa.Column("active_partition", sa.String(512)),
            sa.UniqueConstraint("job_id", name="uq_jobs_job_id"),
            sa.UniqueConstraint("active_partition", name="uq_jobs_active_partition"),
        )

    skill = sa.text("((score - naive_score) / nullif(abs(naive_score), 0))")
    indexes: list[tuple[str, str, list[str | sa.TextClause]]] = [
        ("ix_model_versions_skill", "model_versions", [skill, "key"]),
        ("ix_model_versions_score", "model_versions", ["score", "key"]),
        ("ix_model_versions_created", "model_versions", ["created_at", "key"]),
        ("ix_run_partitions_outcome", "run_partitions", ["run_id", "status", "key"]),
    ]
    for name, table, columns in indexes:
        op.create_index(name, table, columns, if_not_exists=True)


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
