"""The public Python API: ``import manymodels as mm`` and every name in ``__all__``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import manymodels as mm


def test_no_public_name_is_shadowed_by_a_submodule() -> None:
    """Importing ``manymodels.train`` used to rebind ``mm.train`` to the module, so the
    second ``mm.train(...)`` of a session raised "'module' object is not callable"."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(mm.__path__):
        importlib.import_module(f"manymodels.{info.name}")
    for name in mm.__all__:
        value = getattr(mm, name)
        assert type(value).__name__ != "module", f"mm.{name} is a module"


def test_every_public_function_can_be_called_twice_in_one_process(tmp_path: Path) -> None:
    """In a fresh interpreter, as a user's script or notebook would."""
    script = textwrap.dedent(
        f"""
        import pandas as pd
        import manymodels as mm
        from factories import linear_frame, spec_dict

        df = linear_frame(3, 30)
        spec = spec_dict()
        for i in range(2):
            summary = mm.train(spec, df, registry={str(tmp_path / "reg")!r}, backend="local")
            assert summary.run.n_trained == 3, summary
            scored = mm.score(df.drop(columns="y"), {str(tmp_path / "reg")!r}, backend="local")
            assert len(scored) == len(df)
            reg = mm.Registry.open({str(tmp_path / "reg")!r})
            assert reg.get_partition("pid=1").latest_version == i + 1
            assert reg.load_model("pid=1").version.version == 1  # the same bytes: kept
            reg.close()
            assert mm.Spec.coerce(spec).name == "test"
        print("ok")
        """
    )
    tests = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tests, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_forecast_is_exported_as_the_function() -> None:
    """``mm.forecast(...)`` was the submodule ``manymodels.forecast`` (not callable) once any
    command had imported it, and an AttributeError before: the package exports it as it
    exports ``train`` and ``score``, in a fresh interpreter and after every submodule loaded."""
    script = textwrap.dedent(
        """
        import inspect
        import manymodels as mm

        assert "forecast" in mm.__all__
        first = mm.forecast
        import manymodels.cli.forecast, serving.routes.forecast  # what imports it
        assert mm.forecast is first and inspect.isfunction(first), mm.forecast
        assert "horizon" in inspect.signature(mm.forecast).parameters
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
