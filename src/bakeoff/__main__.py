"""`python -m bakeoff ...`: the same CLI as the `bakeoff` command (and `python -m bakeoff.cli`)."""

from bakeoff.cli.main import app

app(prog_name="bakeoff")
