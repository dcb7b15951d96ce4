"""Schema 15: ``jobs.warnings_json``, a retrain job's run's warnings (a JSON list, NULL when
none), written as the job ends. Schema 14 wrote them into ``data_json`` beside the uploaded
rows' fields, where a router older than those warnings, sharing the database, read them as one
more field of the upload and failed on every job that warned (``GET /v1/jobs``): they are moved
here, and ``data_json`` holds the upload's fields alone again.

The jobs table is small (the active jobs and a bounded history), and only the rows whose JSON
names ``"warnings"`` are read and rewritten. The move is written here, not imported: a
revision stays what it was when later code changes."""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "15"
down_revision = "14"
branch_labels = None
depends_on = None

WARNINGS = "warnings"
jobs = sa.table(
    "jobs",
    sa.column("job_id", sa.String),
    sa.column("data_json", sa.Text),
    sa.column("warnings_json", sa.Text),
)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("warnings_json", sa.Text))
    conn = op.get_bind()
    found = conn.execute(
        sa.select(jobs.c.job_id, jobs.c.data_json).where(jobs.c.data_json.like('%"warnings"%'))
    ).all()
    moved = [m for job_id, text in found if (m := _moved(job_id, text)) is not None]
    if moved:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.job_id == sa.bindparam("b_job_id"))
            .values(data_json=sa.bindparam("b_data"), warnings_json=sa.bindparam("b_warnings")),
            moved,
        )


def _moved(job_id: str, text: str) -> dict[str, Any] | None:
    """The row's new ``data_json`` and ``warnings_json``, as schema 14's reader saw them: a list
    of text under ``"warnings"`` (anything else there was shown as none), the rest the upload."""
    try:
        data = json.loads(text)
    except ValueError:  # not written by manymodels: left as it is
        return None
    if not isinstance(data, dict) or WARNINGS not in data:  # "warnings" in a value, not a key
        return None
    said = data.pop(WARNINGS)
    listed = [str(w) for w in said] if isinstance(said, list) else []
    return {
        "b_job_id": job_id,
        "b_data": json.dumps(data) if data else None,
        "b_warnings": json.dumps(listed) if listed else None,
    }


def downgrade() -> None:
    raise NotImplementedError("registries are upgraded only: restore a backup instead")
