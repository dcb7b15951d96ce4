"""The typer app of the ``manymodels`` command, assembled in one place.

The order ``manymodels --help`` lists commands in is written down here rather than following
from the order modules happen to be imported in. ``manymodels.cli`` builds it on first use
(``manymodels.cli.app``), so the read-only commands answered by ``manymodels.cli.fastpath``
never import typer.
"""

from __future__ import annotations

import typer

from manymodels.cli import actuals as actuals_command
from manymodels.cli import (
    alias_commands,
    backup,
    forecast,
    interop,
    intro,
    registry,
    runs,
    schedule,
    score,
    train,
    trust,
)
from manymodels.cli import monitor as monitoring
from manymodels.cli import retrain as retraining
from manymodels.cli.errors import Group
from serving.command import serve  # typer only; FastAPI loads when the command runs

app = typer.Typer(
    cls=Group,
    help="Train, version and serve one model per partition.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # help as plain text: rich markup swallowed "[intervals]" and "[schedule]" as style tags,
    # and kept each docstring line break, so every paragraph wrapped raggedly at 80 columns
    rich_markup_mode=None,
)
app.callback()(intro.root)
app.add_typer(registry.models_app, name="models")
app.add_typer(runs.runs_app, name="runs")
app.command()(train.train)
app.command()(alias_commands.promote)
app.command()(alias_commands.rollback)
app.command()(alias_commands.retire)
app.command()(registry.gc)
app.command()(registry.doctor)
app.command()(registry.sign)
app.command()(trust.trust)
app.command("serve")(serve)
app.command()(intro.demo)
app.command()(intro.version)
app.command()(score.score)
app.command()(forecast.forecast)
app.command()(schedule.scheduler)
app.command()(interop.export)
app.command("import")(interop.import_model)
app.command()(monitoring.monitor)
app.command()(actuals_command.actuals)
app.command()(retraining.retrain)
app.command("export-registry")(backup.export_registry)
app.command("import-registry")(backup.import_registry)
