"""`callreview` command line: thin commands over the pipeline functions.

Every command here is also reachable from Python and, where it makes sense,
from the review app; no logic lives only in this package. Commands live in
``processing`` (files and the pipeline) and ``owner`` (reports, accounts, serve).
"""

from __future__ import annotations

import logging

import typer

from pipeline.cli import owner, processing

app = typer.Typer(
    help="callreview: offline call review. Transcribe call recordings with Whisper, "
    "align them with your sales script, and let listeners review them blind.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# Each module holds its own commands; added without a name they stand at the top level.
app.add_typer(processing.app)
app.add_typer(owner.app)
