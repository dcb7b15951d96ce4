"""An append's new rows, read and checked alone before its registry is opened.

``train --append`` reads the registry for the kept rows it merges with, so it opens the
registry first; opened before the new rows were checked, a registry of a new path or
database was made (its directory, its database with its tables) by a run then refused for
its data. What can be refused on the new rows alone is refused here: an unreadable or empty
table, a column the spec names that the rows lack (the merged table holds the new rows'
columns only, so training would refuse it after the kept rows were read), a time value that
is no time.
"""

from __future__ import annotations

import pandas as pd

from manymodels.data import refuse_missing_columns
from manymodels.exceptions import DataError
from manymodels.spec import Spec
from manymodels.stray_values import refuse_boolean_target
from manymodels.tables import DataSource, describe_source, read_table
from manymodels.timecolumn import parse_time


def read_appended(spec: Spec, data: DataSource) -> pd.DataFrame:
    """The rows to append, read, their columns looked for and their time values parsed:
    before the registry is opened, and before the kept rows of every partition they name are
    read from the artifact store (one object a chunk of partitions) only to be refused."""
    name, new = describe_source(data), read_table(data)
    if new.empty:
        raise DataError(f"{name}: the table has no rows to append")
    # keys, time, target, named features: all at once, with the table's columns and a
    # near name's hint, as training says it (the key alone was named first, then the next)
    refuse_missing_columns(new, spec, source=name)
    if spec.task == "regression":  # merged with kept numbers, True became 1.0 and trained
        refuse_boolean_target(new[spec.target], spec.target, source=name)
    return parse_time(new, spec.time_column, source=name) if spec.time_column else new
