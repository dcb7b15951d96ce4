"""A loaded model and the registry record it came from: what ``Registry.load_model`` returns.

Kept apart from ``client`` (the SQL facade): it needs the record and the estimator, nothing of
SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from manymodels.registry.entities import ModelVersion


@dataclass(frozen=True)
class LoadedModel:
    """A fitted estimator together with the registry record it was loaded from.

    ``predict`` and ``predict_proba`` take a pandas DataFrame or a list of dicts with the
    version's feature names, whatever the estimator was fitted on (a numpy array, or a
    DataFrame when features are categorical), checked against the version's feature schema
    exactly as the router checks a request (``InvalidRows``, with the router's messages)::

        loaded = reg.load_model("store=2,brand=tropicana")
        loaded.predict([{"price": 2.49, "deal": 1, "feat": 0}])     # array([…])
        loaded.predict(df)                                           # any frame with the features
    """

    model: Any
    version: ModelVersion

    @property
    def features(self) -> list[str]:
        """The feature names, in the order the model was fitted on."""
        return list(self.version.schema.features)

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` (a DataFrame, a list of dicts, one dict or one row of a
        frame, ``df.iloc[i]``), as a numpy
        array with one value per row, in the target's units (a version trained with a
        ``target_transform`` turns its answers back: ``manymodels.targetunits``)."""
        from manymodels.inputs import model_input, one_row
        from manymodels.targetunits import to_target_units

        schema = self.version.schema
        data = one_row(data, schema)  # df.iloc[i]: one row
        with _data_rows():
            X = model_input(data, schema)
        if len(X) == 0:  # an empty filter's frame: scikit-learn refuses 0 samples, mm.score not
            return self._no_rows()
        with self._refusals(X):
            predictions = self.model.predict(X)
        if schema.transform is None:
            return predictions
        return to_target_units(predictions, data, schema)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities for ``data``, one row per input row, one column per class of
        the table the version was trained from (``classes``, its schema's list, in that
        order): 0 for a class its partition never held, so every version's columns mean the
        same classes. A model without probabilities (a regressor) raises ``AttributeError`` as
        scikit-learn's own estimators do."""
        import numpy as np

        from manymodels.classes import over_table_classes
        from manymodels.inputs import model_input, one_row

        if not hasattr(self.model, "predict_proba"):
            raise AttributeError(
                f"the model of '{self.version.key}' v{self.version.version} "
                f"({type(self.model).__name__}) has no predict_proba"
            )
        schema = self.version.schema
        with _data_rows():
            X = model_input(one_row(data, schema), schema)
        if len(X) == 0:
            return np.zeros((0, len(self.classes)))
        with self._refusals(X):
            proba = np.asarray(self.model.predict_proba(X))
        return over_table_classes(proba, self.model.classes_, schema.classes)[1]

    def _no_rows(self) -> Any:
        """``predict``'s answer to no rows: an empty array typed as an answer would be (the
        classes' type for a classifier), where scikit-learn raised "Found array with 0
        sample(s)", reworded as "could not score the rows"."""
        import numpy as np

        classes = getattr(self.model, "classes_", None)
        return np.asarray([], dtype=float if classes is None else np.asarray(classes).dtype)

    @contextmanager
    def _refusals(self, X: Any) -> Iterator[None]:
        """The estimator's own refusal of rows that passed the schema (a NaN for a model that
        takes none: the row and feature named) as the router words it (its 422), not
        scikit-learn's bare ValueError."""
        from manymodels.exceptions import DataError, first_line
        from manymodels.features import missing_value

        try:
            yield
        except (ValueError, TypeError) as e:
            where = f"partition '{self.version.key}' v{self.version.version}"
            why = first_line(e) + missing_value(X, self.version.schema, data_rows=True)
            raise DataError(f"{where} could not score the rows: {why}") from e

    @property
    def classes(self) -> list[Any]:
        """The columns of ``predict_proba``: the table's classes (the model's own for a
        version that records none)."""
        from manymodels.classes import answered_classes

        table = self.version.schema.classes
        return list(answered_classes(getattr(self.model, "classes_", []), table))


@contextmanager
def _data_rows() -> Iterator[None]:
    """Rows refused by the schema named as the rest of the library names a table's rows,
    data rows from 1 (``score``: "data row 3 (counting from 1)"), where ``predict`` said
    "row 2" (the router's count of a request's rows, from 0)."""
    from manymodels.exceptions import InvalidRows

    try:
        yield
    except InvalidRows as e:
        raise e.as_data_rows() from None
