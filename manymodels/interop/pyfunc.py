"""The pyfunc model a version is exported as when it is not plain scikit-learn.

Kept apart from ``mlflow_io`` because MLflow pickles an instance of this class into the export
(``python_model.pkl``) by reference: whoever loads the export imports this module, so it holds
nothing but the class, and imports only MLflow and what scoring needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel


class ManyModelsModel(PythonModel):
    """A fitted estimator and its feature schema, scored as ``LoadedModel.predict`` scores:
    rows checked against the schema (``InvalidRows`` naming each bad cell), the model fed the
    float64 matrix or DataFrame it was fitted on."""

    def __init__(self, model: Any, feature_schema: Mapping[str, Any]) -> None:
        self.model = model
        self.feature_schema = dict(feature_schema)  # the stored document: parsed per call, so
        # an export pickled by one release of manymodels loads under another

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        from manymodels.feature_schema import FeatureSchema
        from manymodels.inputs import model_input as build

        schema = FeatureSchema.parse(self.feature_schema)
        predictions = self.model.predict(build(model_input, schema))
        if schema.transform is None:
            return predictions
        from manymodels.targetunits import to_target_units  # a scaled target: its units again

        return to_target_units(predictions, model_input, schema)
