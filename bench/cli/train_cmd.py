"""`bench train sapnet|prenet`: wired to bench.train."""

from __future__ import annotations

import typer

train_app = typer.Typer(help="Train SAPNet or PReNet with the paper's recipe.", no_args_is_help=True)
