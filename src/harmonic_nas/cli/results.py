"""CLI commands of the results stage: ``report``, ``export``, ``predict``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from rich.text import Text

from harmonic_nas.cli._common import console, err_console, print_json, rich_progress
from harmonic_nas.errors import DataError

if TYPE_CHECKING:
    from harmonic_nas.results._predict import Prediction


def _prob_table(pred: Prediction, top: int, width: int) -> Table:
    """One row per sample: every class as a column when they fit the terminal, else the top k."""
    names = pred.class_names
    col = [max(len(n), 6) + 3 for n in names]
    sample_w = max([len(s) for s in pred.samples] + [6]) + 3
    wide = sample_w + 14 + sum(col) + 2 <= width
    kind = "sigmoid" if pred.task == "multilabel" else "softmax"
    table = Table(title=f"class probabilities ({kind}, {len(pred.samples)} samples)")
    table.add_column("sample", no_wrap=True)
    table.add_column("prediction", style="bold")
    if wide:
        for n in names:
            table.add_column(n, justify="right", no_wrap=True)
    else:
        table.add_column(f"top {min(top, len(names))} classes")
    for sample, row, chosen in zip(pred.samples, pred.probabilities, pred.predicted, strict=True):
        label = ", ".join(chosen) if chosen else "(none)"
        if wide:
            best = int(row.argmax())
            cells = [Text(f"{p:.4f}", style="bold" if j == best else "") for j, p in enumerate(row)]
            table.add_row(sample, label, *cells)
        else:
            order = row.argsort()[::-1][:top]
            table.add_row(sample, label, ", ".join(f"{names[j]} {row[j]:.4f}" for j in order))
    return table


def _parse_files(pairs: list[str] | None) -> dict[str, Path]:
    """``--file MODALITY=PATH`` pairs -> ``{modality: path}`` (one-line errors)."""
    out: dict[str, Path] = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise DataError(
                f"--file {pair!r} is not MODALITY=FILE; write e.g. --file image=digit.png"
            )
        if name.strip() in out:
            raise DataError(f"--file gives modality '{name.strip()}' twice; give one file each")
        out[name.strip()] = Path(path.strip())
    return out


def _right(pred: Prediction, score: float) -> str:
    """``"k/"`` samples predicted right (classification), empty for multilabel (weighted F1
    counts no samples)."""
    return "" if pred.task == "multilabel" else f"{round(score * len(pred.samples))}/"


def _per_label_table(task: str, rows: list[dict[str, Any]]) -> Table:
    from harmonic_nas.tasks import PER_LABEL_LABELS

    table = Table(title=f"per-label {PER_LABEL_LABELS.get(task, 'score')}")
    table.add_column("label")
    table.add_column(PER_LABEL_LABELS.get(task, "score"), justify="right")
    table.add_column("support", justify="right")
    for r in rows:
        score = r["score"]
        table.add_row(str(r["label"]), "–" if score is None else f"{score:.4f}", str(r["support"]))
    return table


def _pareto_json(run: Path) -> dict[str, object]:
    """The Pareto table of ``report`` as JSON: one object per member (the Markdown's columns)."""
    from harmonic_nas.results import deploy_summary, load_run

    art = load_run(run)
    rec = art.record.recommendation()
    return {
        "run": str(run),
        "metric": art.metric,
        "members": [
            {
                "id": m.id,
                "trial": m.trial,
                "val_metric": m.val_metric,
                "test_metric": m.test_metric,
                "test_metric_std": m.test_metric_std,
                "latency_ms": m.latency_ms,
                "energy_mj": m.energy_mj,
                "latency_paper_ms": m.latency_paper_ms,
                "energy_paper_mj": m.energy_paper_mj,
                "params": m.params,
            }
            for m in art.members
        ],
        "recommended": None if rec is None else rec.to_json(),
        "deploy": deploy_summary(art),
    }


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app."""

    @app.command("report")
    def report_cmd(
        run: Path = typer.Argument(..., help="run directory, e.g. runs/quick"),
        as_json: bool = typer.Option(
            False, "--json", help="print the Pareto table (and the report path) as JSON"
        ),
    ) -> None:
        """Write RUN/report.html (self-contained) and RUN/figures/*.png; print the Pareto table."""
        from harmonic_nas.results import deploy_summary, pareto_markdown, report

        with rich_progress(transient=True) as progress:
            path = report(run, progress=progress)
        if as_json:
            print_json({**_pareto_json(run), "report": str(path)})
            return
        console.print(pareto_markdown(run), markup=False, highlight=False, soft_wrap=True)
        for line in deploy_summary(run):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(f"report: {path}", markup=False, highlight=False, soft_wrap=True)

    @app.command("export")
    def export_cmd(
        run: Path = typer.Argument(..., help="run directory, e.g. runs/quick"),
        model: str = typer.Option(..., "--model", "-m", help="Pareto model id, e.g. t0007"),
        fmt: str = typer.Option(
            "torchscript", "--format", "-f", help="torchscript (model.pt) or onnx (model.onnx)"
        ),
        samples: int = typer.Option(
            64, min=1, help="test samples used to check the file against PyTorch"
        ),
        repeats: int = typer.Option(50, min=50, help="timed runs at batch size 1 (>= 50)"),
        tolerance: float = typer.Option(1e-4, min=0.0, help="max abs difference allowed"),
    ) -> None:
        """Export a Pareto model as one standalone file (+ preprocess.json), checked and timed."""
        from harmonic_nas.results import export

        with rich_progress(transient=True) as progress:
            res = export(
                run,
                model,
                fmt,
                samples=samples,
                repeats=repeats,
                tolerance=tolerance,
                progress=progress,
            )
        table = Table(title=f"export of {res.model_id} ({res.format})", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        table.add_row("model file", str(res.model_path))
        table.add_row("preprocessing", str(res.preprocess_path))
        check = "onnxruntime vs PyTorch" if res.format == "onnx" else "TorchScript vs PyTorch"
        table.add_row(
            "max abs diff",
            f"{res.max_abs_diff:.2e} ({check}, {res.n_checked} test samples, "
            f"tolerance {res.tolerance:g})",
        )
        table.add_row(
            "measured latency (this machine)",
            f"{res.latency_ms:.3f} ms median, {res.latency_p90_ms:.3f} ms p90 "
            f"(batch 1, {res.repeats} runs until the halves agree within "
            f"{res.split_half_pct or 0:.1f} %, {res.threads} thread(s); {res.measured_on})",
        )
        lut = "–" if res.lut_latency_ms is None else f"{res.lut_latency_ms:.3f} ms"
        if res.lut_latency_paper_ms is not None:
            lut += f" (backbones + fusion ops: {res.lut_latency_paper_ms:.3f} ms)"
        if res.lut_is_other_machine:
            lut += f" — for device '{res.device}', not this machine: not comparable"
        table.add_row(f"LUT prediction ({res.device})", lut)
        if res.unused_modalities:
            table.add_row(
                "unused modalities",
                ", ".join(res.unused_modalities)
                + " (no fusion cell reads them; still inputs of the file, ignored)",
            )
        console.print(table)

    @app.command("predict")
    def predict_cmd(
        model: Path = typer.Argument(
            ..., help="exported model.pt / model.onnx (or the directory holding it)"
        ),
        inputs: list[Path] | None = typer.Option(
            None,
            "--input",
            "-i",
            help=".npz with one array per modality (N samples or one), e.g. a dataset's "
            "test.npz (its labels give the task metric); repeat for more files",
        ),
        files: list[str] | None = typer.Option(
            None,
            "--file",
            help="MODALITY=FILE: one raw file per modality, e.g. --file image=digit.png "
            "--file audio=seven.wav (read as preprocess.json says)",
        ),
        top: int = typer.Option(
            3, min=1, help="classes shown per sample when all of them do not fit the terminal"
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="print every sample's probabilities, the task metric and the per-label scores "
            "as JSON",
        ),
    ) -> None:
        """Run an exported model on samples and print class probabilities (and, when the inputs
        carry labels, the task's metric and its per-label scores)."""
        from harmonic_nas.results import load_exported, predict

        exported = load_exported(model)
        if not exported.takes_raw_inputs:
            err_console.print(
                f"warning: {exported.path} is an older export that takes standardised inputs; "
                "export it again to feed raw-scale inputs",
                highlight=False,
                soft_wrap=True,
            )
        pred = predict(exported, list(inputs or []), files=_parse_files(files))
        if as_json:
            print_json(pred.to_json())
            return
        console.print(_prob_table(pred, top, console.width))
        score, per_label = pred.metric, pred.per_label
        if score is not None and per_label is not None:
            console.print(
                f"{pred.metric_label}: {score:.4f} ({_right(pred, score)}{len(pred.samples)} "
                "samples, labels of the input files)",
                highlight=False,
            )
            console.print(_per_label_table(pred.task, per_label), highlight=False)
