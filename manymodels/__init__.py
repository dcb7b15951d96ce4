"""manymodels: one model per partition, trained on Ray, versioned in a registry, served.

import manymodels as mm

summary = mm.train("store_sales.toml", "store_sales.csv", registry="./mmregistry")
reg = mm.Registry.open("./mmregistry")
model = reg.load_model({"store": 2, "brand": "tropicana"}).model
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ManyModelsError",
    "Registry",
    "RegistryLocation",
    "RunSummary",
    "Spec",
    "__version__",
    "forecast",
    "score",
    "train",
]

if TYPE_CHECKING:
    from manymodels.exceptions import ManyModelsError
    from manymodels.forecasting import forecast
    from manymodels.pipeline import train
    from manymodels.registry import Registry, RegistryLocation
    from manymodels.run_summary import RunSummary
    from manymodels.scoring import score
    from manymodels.spec import Spec

_LAZY = {
    "ManyModelsError": "manymodels.exceptions",
    "Registry": "manymodels.registry",
    "RegistryLocation": "manymodels.registry",
    "RunSummary": "manymodels.run_summary",
    "Spec": "manymodels.spec",
    "train": "manymodels.pipeline",
    "score": "manymodels.scoring",
    "forecast": "manymodels.forecasting",  # not manymodels.forecast: a submodule named as
    # the function would rebind mm.forecast to itself once imported
}


def __getattr__(name: str) -> Any:
    """Heavy modules (scikit-learn, pandas) load on first use, so ``manymodels --help`` is fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'manymodels' has no attribute {name!r}")
