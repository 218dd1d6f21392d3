"""``python -m exchange``: the same as the ``exchange`` command."""

from exchange.cli import app

app(prog_name="exchange")
