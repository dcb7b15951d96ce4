"""The registry's tables (SQLAlchemy Core): portable SQL, SQLite by default, PostgreSQL by URL.

Timestamps are ISO-8601 UTC strings and structured fields are JSON text, so the schema needs
nothing a particular database lacks. ``partitions.latest_version`` makes the next version number
an O(1) lookup, and ``aliases`` is tiny and indexed so the router can mirror it cheaply.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)

from manymodels.keys import MAX_KEY_CHARS

FEATURE_CHARS = 256  # a drift row's feature name (``monitoring.store`` cuts a longer one)

SCHEMA_VERSION = "15"
"""1 → 2: ``model_versions.data_sha256``; 2 → 3: ``model_versions.signature``; 3 → 4: the
monitoring tables ``monitor_drift`` and ``monitor_actuals``; 4 → 5: ``jobs``; 5 → 6:
``model_versions.members_json``; 6 → 7: ``runs.heartbeat_at``; 7 → 8:
``aliases.version_created_at`` and ``ix_aliases_age``; 8 → 9: the key columns in code-point
order on PostgreSQL (``KEY``; SQLite's already are); 9 → 10: ``ix_run_partitions_key``; 10 → 11:
``ix_runs_status``; 11 → 12: ``ix_run_partitions_lost``; 12 → 13: ``holiday_sets``; 13 → 14:
``monitor_actuals.counted``; 14 → 15: ``jobs.warnings_json``. Each step
is an alembic revision of that number (``manymodels/registry/alembic/versions``): a change here
needs one (see ``manymodels.registry.migrations``)."""

KEY = String(MAX_KEY_CHARS).with_variant(String(MAX_KEY_CHARS, collation="C"), "postgresql")
"""A partition key column. Its order is code-point order on every database, Python's own
(``sorted``), which the registry's pages rely on: ``run_failures`` merges its ranges in Python,
and a ``prefix`` is the range ``prefix <= key < prefix_upper(prefix)``. SQLite compares text
bytewise (UTF-8: code-point order); PostgreSQL by the database's collation, which is
linguistic under a locale (``en_US.UTF-8``, the default of most installations, or ICU): there
"s=9" sorts before "s=:" and "s=a," before "s=a-", so a prefix ending in ``9``, ``z``, ``,``
or ``%`` found nothing and a run's failures came back repeated and skipped page after page.
``COLLATE "C"`` is bytewise, whatever the database's locale (schema 9)."""

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec_name", String(100), nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("spec_json", Text, nullable=False),
    Column("data_source", Text, nullable=False),
    Column("data_fingerprint", String(64), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("ended_at", String(32)),
    Column("n_partitions", Integer, nullable=False),
    Column("n_trained", Integer, nullable=False, default=0),
    Column("n_skipped", Integer, nullable=False, default=0),
    Column("n_failed", Integer, nullable=False, default=0),
    Column("options_json", Text, nullable=False, default="{}"),
    Column("error", Text),
    Column("heartbeat_at", String(32)),  # the running process's last sign of life
    Index("ix_runs_started", "started_at"),
    # the runs still marked running (of a spec): read by every schedule firing
    # (``run_busy.training_run``), by ``gc`` (``live_runs_since``) and by a run's start
    # (``_refuse_keys_in_training``); an index range, not a scan of every run (schema 11)
    Index("ix_runs_status", "status", "spec_name"),
)

partitions = Table(
    "partitions",
    metadata,
    Column("key", KEY, primary_key=True),
    Column("key_json", Text, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", KEY, ForeignKey("partitions.key"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("estimator", Text, nullable=False),
    Column("params_json", Text, nullable=False),
    Column("metric", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("naive_score", Float),
    Column("n_rows", Integer, nullable=False),
    Column("data_fingerprint", String(64), nullable=False),
    Column("feature_schema_json", Text, nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("artifact_size", Integer, nullable=False),
    Column("libraries_json", Text, nullable=False),
    Column("candidates_json", Text, nullable=False),
    Column("warnings_json", Text, nullable=False),
    Column("validation_json", Text, nullable=False),
    # champion vs challenger: scores, policy, whether it was promoted and why
    Column("evaluation_json", Text, nullable=False, default="{}"),
    # the partition's input rows in the artifact store, for retraining by appending new rows
    Column("data_sha256", String(64)),
    # HMAC of its key, version and digests when a signing key is set (manymodels.signing)
    Column("signature", String(128)),
    # a JSON list of the global models its artifact names (an ensemble's members,
    # ``manymodels.global_members``); NULL for none. Schema 6.
    Column("members_json", Text),
    UniqueConstraint("key", "version", name="uq_model_versions_key_version"),
    Index("ix_model_versions_run", "run_id"),
    Index("ix_model_versions_sha", "artifact_sha256"),
)

# A business-day calendar's holidays, once per distinct set: a version's plan names its set by
# ``sha256`` (``manymodels.holiday_sets``) rather than holding 5 kB of dates (schema 13)
holiday_sets = Table(
    "holiday_sets",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("dates_json", Text, nullable=False),  # sorted ISO dates, compact JSON: its hash's
)

aliases = Table(
    "aliases",
    metadata,
    Column("key", KEY, ForeignKey("partitions.key"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", String(32), nullable=False),
    # the ``created_at`` of the version it points at, written with every move (schema 8): the
    # partitions by model age walk ``ix_aliases_age`` — production's versions only — instead
    # of every version by ``ix_model_versions_created``, where superseded ones come first
    Column("version_created_at", String(32)),
    PrimaryKeyConstraint("key", "alias"),
    Index("ix_aliases_updated", "updated_at"),
    Index("ix_aliases_age", "alias", "version_created_at", "key"),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", KEY, nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("reason", Text, nullable=False),
    # first | policy | promote | rollback: rollback replays this history, so it is explicit
    Column("action", String(16), nullable=False),
    Column("run_id", String(32)),
    Column("at", String(32), nullable=False),
    Index("ix_alias_history_key", "key", "alias", "id"),
)

LOST = text("status = 'lost'")
"""The predicate of the partial ``ix_run_partitions_lost``: a query uses the index only where it
says ``status = 'lost'`` with the literal (``ChecksMixin.unfinished_runs``)."""

run_partitions = Table(
    "run_partitions",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer),
    Column("error_type", String(128)),
    Column("message", Text),
    Column("n_rows", Integer, nullable=False, default=0),
    Column("data_fingerprint", String(64)),
    PrimaryKeyConstraint("run_id", "key"),
    Index("ix_run_partitions_status", "run_id", "status"),
    # a partition's outcomes across runs, by key: ``--changed-only`` looks up whether the data
    # of a partition with no version (below ``min_rows``) was skipped as it is now (schema 10)
    Index("ix_run_partitions_key", "key", "status", "data_fingerprint"),
    # the runs with partitions lost to infrastructure (``unfinished_runs``: doctor, ``runs
    # abandon``): partial, so it holds only the lost outcomes, not every partition of every
    # run; a query uses it only where it says ``status = 'lost'`` as a literal (schema 12)
    Index("ix_run_partitions_lost", "status", "run_id", sqlite_where=LOST, postgresql_where=LOST),
)

# Monitoring (``manymodels.monitoring``): bounded per partition, written and read by key.
monitor_drift = Table(
    "monitor_drift",
    metadata,
    # one row per partition: the binned counts of rows the routers sampled from the version
    # that served them, decayed with a half-life as they are added to (so the row never grows)
    Column("key", KEY, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("rows", Float, nullable=False),
    Column("counts_json", Text, nullable=False),
    Column("score", Float),  # largest PSI over features, None under the minimum sample
    Column("feature", String(FEATURE_CHARS)),
    Column("updated_at", String(32), nullable=False),
    Index("ix_monitor_drift_score", "score"),
)

monitor_actuals = Table(
    "monitor_actuals",
    metadata,
    # one row per partition, version and UTC day actuals arrived; only the newest few days
    # of each (partition, version) are kept
    Column("key", KEY, nullable=False),
    Column("version", Integer, nullable=False),
    Column("day", String(10), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("abs_error", Float, nullable=False),
    Column("sq_error", Float, nullable=False),
    Column("wrong", Integer, nullable=False),
    Column("naive_abs_error", Float, nullable=False),
    Column("naive_sq_error", Float, nullable=False),
    Column("naive_wrong", Integer, nullable=False),
    Column("last_actual", Text),  # JSON: the previous actual, the next rows' naive answer
    # the digests of the rows this window counted (``monitoring.counted``), so that rows
    # posted again are not counted again while the window is kept (schema 14)
    Column("counted", Text),
    Column("updated_at", String(32), nullable=False),
    PrimaryKeyConstraint("key", "version", "day"),
)

# Retrain jobs of the routers (``manymodels.registry.jobs``): small, pruned to a history.
jobs = Table(
    "jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # submission order
    Column("job_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("partition", KEY, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | succeeded | failed
    Column("backend", String(16), nullable=False),
    # the router process running it (host:pid:nonce), and when it last said it still is
    Column("owner", String(128), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("started_at", String(32)),
    Column("finished_at", String(32)),
    Column("heartbeat_at", String(32), nullable=False),
    Column("data_json", Text),  # the stored rows it trains on (sha256, size, rows, format)
    Column("run_id", String(32)),
    Column("version", Integer),  # the version it registered
    Column("production", Integer),  # where production pointed when it finished
    Column("error", Text),
    # its run's warnings (a JSON list), written as it ends; NULL when there were none
    Column("warnings_json", Text),
    # the partition while the job is queued or running, NULL after: the unique constraint is
    # what makes one retrain per partition hold across every router sharing the database
    Column("active_partition", KEY),
    UniqueConstraint("job_id", name="uq_jobs_job_id"),
    UniqueConstraint("active_partition", name="uq_jobs_active_partition"),
)

# Orders of the whole registry for the partitions listing (``ListingMixin.ranked_partitions``):
# walking one of these in order, checking each row's production alias by primary key, reads a
# page — not the table — at 100,000 partitions. The skill expression is literal SQL text so that
# the query's ORDER BY is the indexed expression word for word (SQLite matches it as text).
SKILL = literal_column("(score - naive_score) / nullif(abs(naive_score), 0)", Float)
"""A version's skill vs the naive baseline (``ModelVersion.skill``); NULL without a naive score."""
# (in parentheses: PostgreSQL takes an expression in an index only so; SQLite matches either)
Index("ix_model_versions_skill", literal_column(f"({SKILL.name})", Float), model_versions.c.key)
Index("ix_model_versions_score", model_versions.c.score, model_versions.c.key)
Index("ix_model_versions_created", model_versions.c.created_at, model_versions.c.key)
# A run's failed / skipped partitions in key order (``ListingMixin.run_failures``).
Index(
    "ix_run_partitions_outcome",
    run_partitions.c.run_id,
    run_partitions.c.status,
    run_partitions.c.key,
)
