"""Formats other tools speak, translated at the edge: nothing here is imported by the core.

``manymodels.interop.mlflow_io`` writes a version as an MLflow model and registers an MLflow
scikit-learn model as a version. It needs the ``mlflow`` extra (``pip install
'manymodels[mlflow]'``), imported only when one of its functions runs.
"""
