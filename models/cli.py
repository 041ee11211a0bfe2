"""``signalcraft-model``: train and export the compressor model, evaluate it on the simulator.

    signalcraft-model train [--out DIR] [--days N] [--seeds N]
    signalcraft-model export [--out DIR]          # re-export: retrain with the committed defaults
    signalcraft-model evaluate [--seeds N] [--days N] [--json]

Benchmarks on public data sets (``signalcraft-model benchmark skab DIR``) plug in as a sub-app of
``benchmark_app`` below.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from models.simdata import KINDS

ARTIFACTS = Path(__file__).with_name("artifacts")

app = typer.Typer(help="Train, export and evaluate the SignalCraft compressor model.", no_args_is_help=True)
benchmark_app = typer.Typer(help="Score public benchmark data sets with the agent's code path.")
app.add_typer(benchmark_app, name="benchmark")
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _train(out: Path, days: float, seeds: int) -> None:
    from models.train import TrainConfig, train

    cfg = TrainConfig(seeds=seeds, days=days)
    with _progress() as bar:
        task = bar.add_task("simulating healthy units", total=seeds * len(KINDS))
        onnx_path, manifest_path = train(cfg, out, progress=lambda _: bar.advance(task))
    console.print(f"wrote [bold]{onnx_path}[/] and [bold]{manifest_path}[/]")


@app.command("train")
def train_command(
    out: Path = typer.Option(ARTIFACTS, "--out", help="Folder for the .onnx and its manifest."),
    days: float = typer.Option(4.0, "--days", min=0.5, help="Simulated days per training unit."),
    seeds: int = typer.Option(8, "--seeds", min=2, help="Training units per kind (freezer, cold room)."),
) -> None:
    """Simulate healthy units, fit the detector and export it (deterministic: same bytes every time)."""
    _train(out, days, seeds)


@app.command("export")
def export_command(
    out: Path = typer.Option(ARTIFACTS, "--out", help="Folder for the .onnx and its manifest."),
) -> None:
    """Rebuild the committed artifacts with the default training configuration."""
    _train(out, 4.0, 8)


@app.command("evaluate")
def evaluate_command(
    seeds: int = typer.Option(10, "--seeds", min=1, help="Evaluation units per kind."),
    days: float = typer.Option(7.0, "--days", min=0.5, help="Simulated days per healthy unit."),
    model_dir: Path | None = typer.Option(None, "--model", help="Model folder (default: the bundled one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Measure false alarms and detection delays on simulated units (see docs/MODEL_CARD.md)."""
    from models import evaluate_sim

    results = evaluate_sim.run_all(seeds=seeds, days=days, model_dir=model_dir, console=console)
    if as_json:
        console.print_json(json.dumps(results))
    else:
        evaluate_sim.print_tables(results, console)


@benchmark_app.command("skab")
def skab_command(
    folder: Path = typer.Argument(..., help="SKAB folder (valve1/, valve2/, other/ ... with *.csv)."),
    model_dir: Path | None = typer.Option(None, "--model", help="Model folder (default: pump-v1)."),
    as_json: bool = typer.Option(False, "--json", help="Print {f1, far, mar, files} as JSON."),
    per_file: bool = typer.Option(False, "--per-file", help="Also print every file's numbers."),
) -> None:
    """Score every SKAB CSV (except anomaly-free) with the agent's calibration + ONNX + health path."""
    from models import pump, skab

    try:
        files = skab.find_files(folder)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="FOLDER") from None
    model = model_dir or pump.ARTIFACTS
    if as_json:
        metrics, results = skab.benchmark(folder, model)
        print(json.dumps(metrics))
        return
    with _progress() as bar:
        task = bar.add_task("scoring SKAB files", total=len(files))
        metrics, results = skab.benchmark(folder, model, progress=lambda _: bar.advance(task))
    if per_file:
        for r in results:
            m = r.counts.metrics()
            console.print(f"{r.name:<24} F1 {m['f1']:.3f}  FAR {m['far']:6.2f} %  MAR {m['mar']:6.2f} %")
    console.print(
        f"SKAB ({metrics['files']} files, first {skab.CALIBRATION_ROWS} rows calibrate): "
        f"F1 {metrics['f1']:.3f}  FAR {metrics['far']:.2f} %  MAR {metrics['mar']:.2f} %"
    )


if __name__ == "__main__":
    app()
