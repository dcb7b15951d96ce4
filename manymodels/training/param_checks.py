"""Whether a chunk may fit its candidates without scikit-learn's per-fit parameter checks.

scikit-learn checks an estimator's constructor parameters (``_validate_params``) on every
``fit``, and a public function's arguments on every call: at a partition's hundred rows that
took ~10-15 % of a chunk's CPU (``benchmarks/chunk_overhead.py``), for the same few grid
points checked again in every partition. Those checks read the parameters alone, never the
data, so a chunk checks each grid point once, up front, and fits under
``skip_parameter_validation`` only when every one passed; otherwise it fits as before, and a
bad grid point fails each partition with scikit-learn's own message. Only the spec's own
estimators are checked here, so a chunk that also refits champions (a retrain: their recipes
come from older versions) or builds candidates by a factory (which may build anything) keeps
every check.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from manymodels import candidates as cands
from manymodels.spec import Spec


def checked_once(spec: Spec, *, categorical: Sequence[str], numeric: Sequence[str]) -> bool:
    """True when every local candidate's every grid point, built as a partition builds it,
    passes scikit-learn's parameter checks (each nested estimator's too)."""
    from sklearn.base import BaseEstimator

    for cand in spec.candidates:
        if cand.scope != "local":
            continue
        if cand.is_factory:
            return False
        for params in cands.grid(cand):
            try:
                built = cands.build(
                    cand, params, categorical=categorical, numeric=numeric, seed=spec.seed
                )
                nested = [built, *built.get_params(deep=True).values()]
                for est in nested:
                    if isinstance(est, BaseEstimator) and hasattr(est, "_validate_params"):
                        est._validate_params()
            except Exception:
                return False
    return True


@contextmanager
def fits_unchecked(spec: Spec, *, categorical: Sequence[str], numeric: Sequence[str],
                   retrain: bool) -> Iterator[None]:  # fmt: skip
    """Fit without scikit-learn's parameter checks where ``checked_once`` allows it."""
    ok = not retrain and checked_once(spec, categorical=categorical, numeric=numeric)
    context: Any = nullcontext()
    if ok:
        import sklearn

        context = sklearn.config_context(skip_parameter_validation=True)
    with context:
        yield
