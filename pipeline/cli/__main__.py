"""`python -m pipeline.cli`: how `callreview serve` starts the upload worker."""

from pipeline.cli import app

app()
