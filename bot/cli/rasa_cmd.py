"""``triage rasa export | validate | train | serve``: a real Rasa server from nlu_data/ (docs/rasa.md)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.console import console, friendly_errors, progress_status, settings
from bot.nlu.config import CONFIG_FILE, PipelineConfig
from bot.nlu.rasa_project import (
    DEFAULT_VENV,
    Classifier,
    RasaServer,
    describe,
    export_project,
    train_project,
    validate_project,
)
from bot.nlu.training_data import load_training_data

app = typer.Typer(no_args_is_help=True)

ProjectOption = Annotated[
    Path | None, typer.Option("--project", help="The Rasa project folder (default models/rasa).")
]
VenvOption = Annotated[Path, typer.Option("--venv", help="Rasa's environment (`make rasa` builds it).")]


def _project(project: Path | None) -> Path:
    return project or settings().model_dir / "rasa"


@app.command()
def export(
    project: ProjectOption = None,
    data: Annotated[Path | None, typer.Option(help="Training data folder (default nlu_data).")] = None,
    classifier: Annotated[Classifier, typer.Option(help="DIETClassifier or LogisticRegression.")] = (
        Classifier.diet
    ),
    epochs: Annotated[int, typer.Option(min=1, help="DIET's training epochs.")] = 100,
) -> None:
    """Write a Rasa 3.6 project (config.yml, domain.yml, data/nlu.yml) from the training data."""
    data_dir, out = data or settings().data_dir, _project(project)
    with friendly_errors():
        config = PipelineConfig.from_file(data_dir / CONFIG_FILE)
        summary = export_project(load_training_data(data_dir), config, data_dir, out, classifier, epochs)
    console.print(
        f"{out}: {summary.examples:,} examples of {summary.intents} intents, {classifier.value} classifier; "
        "next: triage rasa train"
    )


@app.command()
def validate(project: ProjectOption = None, venv: VenvOption = DEFAULT_VENV) -> None:
    """Run ``rasa data validate`` on the exported project."""
    out = _project(project)
    with friendly_errors(), progress_status("rasa data validate") as progress:
        validate_project(out, venv, progress)
    console.print(f"{out}: rasa data validate passed")


@app.command()
def train(project: ProjectOption = None, venv: VenvOption = DEFAULT_VENV) -> None:
    """Train the exported project with ``rasa train nlu`` (Rasa skips it when nothing changed)."""
    out = _project(project)
    started = time.perf_counter()
    with friendly_errors(), progress_status("rasa train nlu") as progress:
        model = train_project(out, venv, progress)
    console.print(f"{model} ({time.perf_counter() - started:.0f} s); next: triage rasa serve")


@app.command()
def serve(
    project: ProjectOption = None,
    venv: VenvOption = DEFAULT_VENV,
    port: Annotated[int, typer.Option(help="Loopback port of the Rasa server.")] = 5005,
    token: Annotated[
        str | None, typer.Option(help="--auth-token (default TRIAGE_RASA_TOKEN, else a new random one).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the model to load.")] = 300.0,
) -> None:
    """Start ``rasa run --enable-api`` on 127.0.0.1 with a token, wait until it is ready, keep it running."""
    s = settings()
    out = _project(project)
    configured = s.rasa_token.get_secret_value() if s.rasa_token else None
    server = RasaServer(out, port, token or configured, venv)
    # Rasa runs in its own session (Ctrl-C is ours to pass on); a SIGTERM must stop it too, not orphan it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with friendly_errors():
        server.start()
        try:
            with progress_status(f"starting Rasa on {server.url}") as progress:
                status = server.wait_ready(timeout, progress)
            console.print(f"Rasa ready at {server.url}: {describe(status)}; log: {server.log}")
            if not (token or configured):
                console.print(f"its token (new): {server.token}")
            console.print(
                f"use it: TRIAGE_NLU_BACKEND=rasa TRIAGE_RASA_URL={server.url} TRIAGE_RASA_TOKEN=… triage serve"
            )
            assert server.process is not None
            server.process.wait()
        except KeyboardInterrupt:
            console.print("stopping Rasa")
        finally:
            server.stop()
