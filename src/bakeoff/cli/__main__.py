from bakeoff.cli.main import app

app(prog_name="bakeoff")
