"""Formats other tools speak, translated at the edge: nothing here is imported by the core.

``mlflow_io`` writes a version as an MLflow model (``pyfunc`` holds the pyfunc wrapper it may
carry), and ``mlflow_import`` registers an MLflow scikit-learn model as a version. They need
the ``mlflow`` extra (``pip install 'manymodels[mlflow]'``), imported only when one of their
functions runs.
"""
