"""The `bench` command line (typer). One file per command group; errors print one clear line."""

from __future__ import annotations

import typer

from bench.cli.datasets_cmd import datasets_app
from bench.cli.info_cmd import info_command
from bench.cli.list_cmd import list_command
from bench.cli.report_cmd import report_command
from bench.cli.run_cmd import run_command
from bench.cli.train_cmd import train_app
from bench.cli.weights_cmd import weights_app

app = typer.Typer(help="Benchmark harness for single-image deraining.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.command("list")(list_command)
app.command("info")(info_command)
app.command("run")(run_command)
app.command("report")(report_command)
app.add_typer(datasets_app, name="datasets")
app.add_typer(train_app, name="train")
app.add_typer(weights_app, name="weights")

__all__ = ["app"]
