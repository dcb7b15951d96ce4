"""What a caller may pass as ``backend`` to ``train`` and ``score``: a name (``auto``, ``ray``,
``local``) or an object with the ``Backend`` methods (``manymodels.execution``), checked before
any work is done or recorded. ``backend=None`` failed far inside, with a bare AttributeError
('NoneType' object has no attribute 'workers'), once a run was recorded."""

from __future__ import annotations

import reprlib
from inspect import getattr_static

from manymodels.exceptions import TrainingError
from manymodels.execution import known

_METHODS = ("map_unordered", "cancel", "close")
_MISSING = object()


def require_backend(backend: object) -> None:
    """``TrainingError`` (as for an unknown name) unless ``backend`` is a known name or
    has the ``Backend`` protocol's methods and ``workers``."""
    if isinstance(backend, str):
        known(backend)
        return
    # looked up without running them: RayBackend.workers asks the cluster for its CPUs
    methods = all(callable(getattr_static(backend, m, None)) for m in _METHODS)
    workers = getattr_static(backend, "workers", _MISSING) is not _MISSING
    if not methods or not workers or isinstance(backend, type):  # a class, not one made
        raise TrainingError(
            "backend must be 'auto', 'ray', 'local' or a Backend object, not "
            f"{type(backend).__name__} {reprlib.repr(backend)}"
        )
