"""Helpers for the core tests, by concern: specs, estimators a spec can name, frames, a
registry's rows, other processes, forged files. Every name is re-exported here, so a test writes
``from factories import linear_frame`` whichever module holds it.

``factories:scaled_ridge`` is importable from a spec because pytest puts ``tests/`` on
``sys.path`` (the directory has no ``__init__.py``). Only in-process backends may use it: Ray
workers do not have ``tests/`` on their path.
"""

from .estimators import (
    SLOW_FIT_MODULE,
    Float32Ridge,
    RowCountingRidge,
    fails_on_many_rows,
    levels_fail_on_all_rows,
    scaled_ridge,
    slowfit_env,
)
from .files import (
    Tripwire,
    backup_plus_member,
    directories_refuse_fsync,
    fsynced,
    small_backup,
)
from .frames import (
    churn_frame,
    linear_frame,
    linear_series,
    noisy_panel,
    retrained_to_a_tie,
    shops_panel,
    shops_spec,
    trained_shops,
)
from .processes import (
    firing_lines,
    forked_child_tag,
    imported_by,
    interruptible,
    job_ended,
    open_client,
    wait_ready,
)
from .registry import (
    LATER_STEPS_UNDONE,
    ago,
    as_older_schema,
    dead_process_tag,
    executed,
    make_run,
    mark_running,
    new_version,
    other_machine_tag,
    sqlite_plan,
)
from .specs import (
    DECIDED,
    LOGISTIC,
    RIDGE,
    SALES_SPEC,
    SENSORS,
    churn_spec,
    labels_spec,
    pumps_spec,
    sales_files,
    sales_toml,
    spec_dict,
    synthetic_ridge_toml,
    users_spec,
)

__all__ = [
    "DECIDED",
    "LATER_STEPS_UNDONE",
    "LOGISTIC",
    "RIDGE",
    "SALES_SPEC",
    "SENSORS",
    "SLOW_FIT_MODULE",
    "Float32Ridge",
    "RowCountingRidge",
    "Tripwire",
    "ago",
    "as_older_schema",
    "backup_plus_member",
    "churn_frame",
    "churn_spec",
    "dead_process_tag",
    "directories_refuse_fsync",
    "executed",
    "fails_on_many_rows",
    "firing_lines",
    "forked_child_tag",
    "fsynced",
    "imported_by",
    "interruptible",
    "job_ended",
    "labels_spec",
    "levels_fail_on_all_rows",
    "linear_frame",
    "linear_series",
    "make_run",
    "mark_running",
    "new_version",
    "noisy_panel",
    "open_client",
    "other_machine_tag",
    "pumps_spec",
    "retrained_to_a_tie",
    "sales_files",
    "sales_toml",
    "scaled_ridge",
    "shops_panel",
    "shops_spec",
    "slowfit_env",
    "small_backup",
    "spec_dict",
    "sqlite_plan",
    "synthetic_ridge_toml",
    "trained_shops",
    "users_spec",
    "wait_ready",
]
