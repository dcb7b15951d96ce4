"""Schema 1: the registry as manymodels 0.1 made it (runs, partitions, versions, aliases).

Registries of schema 1–4 were made by ``create_all`` before alembic; opening one records its
version here first (``alembic stamp``), so this step runs only to build a registry from
nothing (the test that the revisions add up to ``schema.metadata``)."""

import sqlalchemy as sa
from alembic import op

revision = "1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec_name", sa.String(100), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("data_source", sa.Text, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("ended_at", sa.String(32)),
        sa.Column("n_partitions", sa.Integer, nullable=False),
        sa.Column("n_trained", sa.Integer, nullable=False),
        sa.Column("n_skipped", sa.Integer, nullable=False),
        sa.Column("n_failed", sa.Integer, nullable=False),
        sa.Column("options_json", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_started", "runs", ["started_at"])
    op.create_table(
        "partitions",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("key_json", sa.Text, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), sa.ForeignKey("partitions.key"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("estimator", sa.Text, nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("naive_score", sa.Float),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("feature_schema_json", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_size", sa.Integer, nullable=False),
        sa.Column("libraries_json", sa.Text, nullable=False),
        sa.Column("candidates_json", sa.Text, nullable=False),
        sa.Column("warnings_json", sa.Text, nullable=False),
        sa.Column("validation_json", sa.Text, nullable=False),
        sa.Column("evaluation_json", sa.Text, nullable=False),
        sa.UniqueConstraint("key", "version", name="uq_model_versions_key_version"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_sha", "model_versions", ["artifact_sha256"])
    op.create_table(
        "aliases",
        sa.Column("key", sa.String(512), sa.ForeignKey("partitions.key"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("key", "alias"),
    )
    op.create_index("ix_aliases_updated", "aliases", ["updated_at"])
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer),
        sa.Column("to_version", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32)),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_index("ix_alias_history_key", "alias_history", ["key", "alias", "id"])
    op.create_table(
        "run_partitions",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("error_type", sa.String(128)),
        sa.Column("message", sa.Text),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("data_fingerprint", sa.String(64)),
        sa.PrimaryKeyConstraint("run_id", "key"),
    )
    op.create_index("ix_run_partitions_status", "run_partitions", ["run_id", "status"])


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
