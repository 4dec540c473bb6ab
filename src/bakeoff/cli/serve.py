"""`bakeoff serve RUN_DIR --candidate NAME`: one finished candidate of a run as an HTTP service."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from bakeoff.cli.common import console, user_errors
from bakeoff.errors import BakeoffError

API_KEY_VARIABLE = "BAKEOFF_API_KEY"


@user_errors
def serve_command(
    run_dir: Path = typer.Argument(..., help="A run folder written by `bakeoff run`."),
    candidate: str = typer.Option(..., "--candidate", help="Candidate name, as in the run's results."),
    train_size: int = typer.Option(
        None, "--train-size", help="Which training size's trial (default: the largest finished)."
    ),
    seed: int = typer.Option(None, "--seed", help="Which seed's trial (default: the lowest finished)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind. The default accepts only local connections."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free port, printed at start)."),
    max_batch: int = typer.Option(
        16, "--max-batch", min=1, max=1024, help="Texts scored together at most (1: no micro-batching)."
    ),
    max_wait_ms: float = typer.Option(
        5.0, "--max-wait-ms", min=0, max=1000, help="How long a batch waits for more requests, ms."
    ),
    max_body_bytes: int = typer.Option(
        1_000_000, "--max-body-bytes", min=64, help="Largest request body (413 past it)."
    ),
    max_texts: int = typer.Option(64, "--max-texts", min=1, help="Most texts per request (413 past it)."),
    max_chars: int = typer.Option(4_000, "--max-chars", min=1, help="Most characters per text (422 past it)."),
) -> None:
    """Serve POST /v1/classify, GET /healthz and GET /metrics for one candidate; SIGTERM drains in-flight requests.
    Set BAKEOFF_API_KEY to require `Authorization: Bearer <key>` (or `X-API-Key`)."""
    from bakeoff.serving.app import RequestLimits, create_app
    from bakeoff.serving.batcher import BatchSettings
    from bakeoff.serving.predictor import find_trial, load_served_model
    from bakeoff.serving.server import bind, serve

    record = find_trial(run_dir, candidate, train_size, seed)
    api_key = os.environ.get(API_KEY_VARIABLE) or None
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        console.print(
            f"[yellow]warning:[/yellow] binding {host} without {API_KEY_VARIABLE}: anyone who can reach it can use it"
        )
    try:
        sock = bind(host, port)
    except OSError as err:
        raise BakeoffError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port or --host") from None
    console.print(f"loading {record.trial['trial_id']} ...")
    try:
        model = load_served_model(record)
    except BaseException:  # a damaged trial folder (one-line error) or Ctrl-C while loading: free the port now
        sock.close()
        raise
    app = create_app(
        model, RequestLimits(max_body_bytes, max_texts, max_chars), BatchSettings(max_batch, max_wait_ms), api_key
    )
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    console.print(
        f"serving [bold]{model.candidate}[/bold] ({model.trial_id}, {model.device}) on "
        f"http://{shown}:{bound_port} "
        f"(micro-batch <= {max_batch} texts, wait <= {max_wait_ms:g} "
        f"ms{', API key required' if api_key else ''})"
    )
    serve(app, sock)
