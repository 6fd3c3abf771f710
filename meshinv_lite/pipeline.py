"""Run the tutorial notebooks in order with papermill and summarize what they produced.

    python -m meshinv_lite.pipeline --profile quick            # every notebook in notebooks/
    python -m meshinv_lite.pipeline --profile lite --only 00 01
    python -m meshinv_lite.pipeline --profile quick --category cars   # SynthCars -> outputs/cars_quick/

Each notebook ``notebooks/NN_name.ipynb`` is executed into ``<output_root>/<profile>/NN_name.ipynb``
with the parameters ``profile``, ``device``, ``seed``, ``data_dir``, ``output_dir``
(= ``<output_root>/<profile>/NN_name``) and ``interactive=False``. ``--category cars`` passes
``category="cars"`` to every notebook that declares it and writes under ``<output_root>/cars_<profile>/``
(birds keep ``<output_root>/<profile>/``); a notebook that reads data but has no ``category`` parameter
(``08_beyond_the_prior``, birds only) is skipped for cars, with the reason in the summary. The run stops at the first
failing notebook and shows the failing cell's error. ``summary.json`` and ``summary.md`` list each
notebook's status, wall time and the figures from its ``metrics.json``; the command line then prints
``summary.md`` and, when notebook 06 ran, its evaluation table (``06_evaluation/table.md``).

A re-run reuses what earlier runs built: the dataset, the pseudo-GT shards and the GAN checkpoint live
under ``data_dir`` and the evaluation rows under ``<output_root>/<profile>/06_evaluation``; each step
continues where it stopped. ``--rebuild STAGE`` recomputes from ``STAGE`` on (``data`` > ``pseudo_gt`` >
``gan`` > ``results``): it deletes that stage's caches and those of every later stage first.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ._checks import int_at_least
from .config import CATEGORY_NAMES
from .io import atomic_write_bytes, read_json, write_json

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Written by notebook 06 (the paper's Table 1 with our figures); printed at the end of a run that made it.
EVALUATION_TABLE = Path("06_evaluation") / "table.md"


@dataclass
class NotebookRun:
    name: str
    status: str  # "ok" | "failed" | "interrupted" | "skipped"
    seconds: float
    output_notebook: str
    metrics: dict = field(default_factory=dict)
    error: str = ""


def find_notebooks(notebook_dir: Path, only: Optional[Sequence[str]] = None) -> list[Path]:
    """Numbered notebooks ``NN_*.ipynb`` in order; ``only`` keeps those whose name starts with one of the given
    prefixes, and every prefix must match a notebook (``ValueError`` lists the valid ones otherwise)."""
    books = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        raise FileNotFoundError(f"no notebooks NN_*.ipynb in {notebook_dir}")
    if only:
        unknown = [o for o in only if not any(p.stem.startswith(o) for p in books)]
        if unknown:
            valid = ", ".join(p.stem[:2] for p in books)
            raise ValueError(f"no notebook matches {', '.join(repr(o) for o in unknown)}; valid ids: {valid} "
                             f"({', '.join(p.stem for p in books)})")
        books = [p for p in books if any(p.stem.startswith(o) for o in only)]
    return books


def results_dir(output_root: str | Path, profile: str, category: str = "birds") -> Path:
    """Where a run's notebooks, figures and summary go: ``<output_root>/<profile>`` for birds,
    ``<output_root>/<category>_<profile>`` for another category (``outputs/cars_quick``)."""
    from .config import get_profile
    from .data.category import get_category

    name, cat = get_profile(profile).name, get_category(category).name
    return Path(output_root) / (name if cat == "birds" else f"{cat}_{name}")


def takes_category(path: Path) -> Optional[bool]:
    """Whether a notebook runs for another category than birds: ``True`` when its parameters cell declares
    ``category``, ``None`` when it reads no data (no ``data_dir``: category-free, e.g. notebook 00), ``False``
    for a birds-only notebook (``data_dir`` without ``category``, e.g. notebook 08)."""
    import papermill as pm

    declared = set(pm.inspect_notebook(str(path)))
    if "category" in declared:
        return True
    return None if "data_dir" not in declared else False


#: Cached stages, in the order they are built; rebuilding one invalidates the later ones.
STAGES = ("data", "pseudo_gt", "gan", "results")


def clear_stages(stage: str, profile: str, data_dir: str | Path, output_root: str | Path,
                 category: str = "birds") -> list[Path]:
    """Delete the caches of ``stage`` and every later stage for a profile; returns what was removed.

    ``data``: the SynthBirds folder (SynthCars with ``category="cars"``; everything below lives in it);
    ``pseudo_gt``: its ``pseudo_gt_*`` folders; ``gan``: its ``gan_*`` checkpoint folders; ``results``:
    :func:`results_dir` (executed notebooks, figures, evaluation rows). Only folders of those names are touched.
    """
    import shutil

    from .config import get_profile
    from .data.synthbirds import synthbirds_dir

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    later = STAGES[STAGES.index(stage):]
    root = synthbirds_dir(data_dir, profile, category)
    targets: list[Path] = []
    if root.is_dir():
        if "data" in later:
            if not (root / "meta.json").exists():
                raise ValueError(f"{root} has no meta.json: not a SynthBirds folder, refusing to delete it")
            targets.append(root)
        else:
            globs = [g for st, g in (("pseudo_gt", "pseudo_gt_*"), ("gan", "gan_*")) if st in later]
            targets += sorted(p for g in globs for p in root.glob(g) if p.is_dir())
    results = results_dir(output_root, get_profile(profile).name, category)
    if results.is_dir():
        targets.append(results)
    for t in targets:
        shutil.rmtree(t)
    return targets


def _logged_kernel_manager(log_path: Path):
    """A kernel manager whose kernels write their own stderr (startup warnings such as "Kernel is running over
    TCP without encryption", shutdown noise after Ctrl-C) to ``log_path`` instead of the terminal. What cells
    print is unaffected: it travels over the kernel's messages into the executed notebook."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def run_notebook(path: Path, out_root: Path, parameters: dict, kernel: str = "python3") -> NotebookRun:
    """Execute one notebook with papermill; never raises on a notebook error (see ``status``).

    The kernel's own stderr goes to ``<out_root>/logs/<notebook>.kernel.log``."""
    import papermill as pm

    out_dir = out_root / path.stem
    out_nb = out_root / path.name
    params = dict(parameters, output_dir=str(out_dir))
    declared = set(pm.inspect_notebook(str(path)))
    if declared:  # pass only what the notebook's parameters cell declares (notebook 00 has no data_dir)
        params = {k: v for k, v in params.items() if k in declared}
    t0 = time.perf_counter()
    env_before = os.environ.get("MESHINV_HEADLESS")
    os.environ["MESHINV_HEADLESS"] = "1"
    try:
        pm.execute_notebook(str(path), str(out_nb), parameters=params, kernel_name=kernel,
                            cwd=str(REPO_ROOT), progress_bar=False,
                            kernel_manager_class=_logged_kernel_manager(out_root / "logs" / f"{path.stem}.kernel.log"))
        status, error = "ok", ""
    except pm.PapermillExecutionError as e:
        status = "failed"
        error = f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    finally:
        if env_before is None:
            os.environ.pop("MESHINV_HEADLESS", None)
        else:
            os.environ["MESHINV_HEADLESS"] = env_before
    seconds = time.perf_counter() - t0
    metrics_path = out_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() and status == "ok" else {}
    return NotebookRun(path.stem, status, seconds, str(out_nb), metrics, error)


def _fmt_value(v) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_summary(runs: list[NotebookRun], out_root: Path, profile: str) -> Path:
    """``summary.json`` and a readable ``summary.md`` in ``out_root``: one row per notebook, then each
    notebook's key figures as a list, then the evaluation table of notebook 06 when it ran."""
    write_json(out_root / "summary.json", {"profile": profile, "notebooks": [asdict(r) for r in runs]})
    total = sum(r.seconds for r in runs)
    lines = [f"# meshinv-lite run, profile `{profile}`", "",
             f"{sum(r.status == 'ok' for r in runs)} of {len(runs)} notebooks ok"
             + (f" ({sum(r.status == 'skipped' for r in runs)} skipped)" if any(r.status == "skipped" for r in runs) else "")
             + f", {total / 60:.1f} min in all.", "",
             "| notebook | status | seconds | note |", "|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {r.error or ''} |")
    for r in runs:
        figures = {k: v for k, v in r.metrics.items() if isinstance(v, (int, float, bool, str)) and k != "profile"}
        if not figures:
            continue
        lines += ["", f"## {r.name}", ""]
        lines += [f"- `{k}`: {_fmt_value(v)}" for k, v in sorted(figures.items())]
    table = out_root / EVALUATION_TABLE
    if table.exists() and any(r.name == table.parent.name and r.status == "ok" for r in runs):
        lines += ["", table.read_text().replace("# Evaluation", "## Evaluation", 1).rstrip()]
    path = out_root / "summary.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def run_pipeline(
    profile: str = "quick",
    output_root: str | Path = "outputs",
    data_dir: str | Path = "data",
    device: str = "cpu",
    seed: int = 0,
    only: Optional[Sequence[str]] = None,
    notebook_dir: str | Path = REPO_ROOT / "notebooks",
    prior: Optional[str] = None,
    threads: Optional[int] = None,
    train_images: Optional[int] = None,
    category: str = "birds",
) -> list[NotebookRun]:
    """Run the notebooks in order; stops at the first failure. Returns the runs so far.

    ``category``: ``"birds"`` or ``"cars"``, passed to every notebook that declares it; outputs go to
    :func:`results_dir`; birds-only notebooks are skipped for cars (status ``"skipped"``, see :func:`takes_category`).

    ``prior``: what notebooks 04-06 invert, ``"shipped"`` or ``"train"`` (``None``: each notebook's default,
    the shipped prior at quick and lite). ``train_images``: training images that get pseudo ground truth
    in notebooks 02-03 (their ``num_train``; ``None``: the profile's default)."""
    from .data.category import get_category

    cat = get_category(category)
    out_root = results_dir(output_root, profile, cat.name)
    out_root.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "device": device, "seed": seed, "data_dir": str(data_dir), "interactive": False,
              "category": cat.name}
    if prior is not None:
        params["prior"] = prior
    if threads is not None:
        params["threads"] = threads
    if train_images is not None:
        params["num_train"] = train_images
    runs: list[NotebookRun] = []
    with _ctrl_c_raises() as interrupted:
        for path in find_notebooks(Path(notebook_dir), only):
            if cat.name != "birds" and takes_category(path) is False:
                reason = f"birds only (no 'category' parameter): not run for {cat.plural}"
                print(f"[pipeline] {path.name}: skipped, {reason}", flush=True)
                runs.append(NotebookRun(path.stem, "skipped", 0.0, "", error=reason))
                write_summary(runs, out_root, profile)
                continue
            print(f"[pipeline] {path.name} ...", flush=True)
            t0 = time.perf_counter()
            try:
                run = run_notebook(path, out_root, params)
                if interrupted():  # Ctrl-C reached a layer that swallowed it (asyncio, the kernel's cell)
                    raise KeyboardInterrupt
            except KeyboardInterrupt:  # Ctrl-C: keep what finished, say where it stopped
                runs.append(NotebookRun(path.stem, "interrupted", time.perf_counter() - t0, str(out_root / path.name),
                                        error="interrupted (Ctrl-C); a re-run continues from the caches"))
                write_summary(runs, out_root, profile)
                raise
            runs.append(run)
            _report(run, path, runs, out_root, profile)
            if run.status != "ok":
                break
    return runs


def _report(run: NotebookRun, path: Path, runs: list[NotebookRun], out_root: Path, profile: str) -> None:
    """One notebook's status line, the summary so far, and where to look when it failed."""
    print(f"[pipeline] {path.name}: {run.status} in {run.seconds:.1f} s", flush=True)
    write_summary(runs, out_root, profile)
    if run.status != "ok":
        print(f"[pipeline] stopped: {run.name} failed at {run.error}\n  see {run.output_notebook}", file=sys.stderr)


@contextmanager
def _ctrl_c_raises():
    """While the notebooks run, Ctrl-C raises KeyboardInterrupt in this process wherever it lands and is
    remembered: Python's asyncio runner (which papermill's client uses) otherwise turns it into a task
    cancellation that can end a notebook as if it had finished. Yields ``interrupted() -> bool``."""
    import signal
    import threading

    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def on_sigint(signum, frame):
        seen.append(True)
        logging.disable(logging.CRITICAL)  # the kernel's teardown logs "Kernel died" and tracebacks: one line says it
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, before)
        logging.disable(logging.NOTSET)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run the meshinv-lite notebooks with papermill.")
    parser.add_argument("--profile", default="quick", choices=["quick", "lite", "paper"])
    parser.add_argument("--output-root", default="outputs")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--threads", type=int_at_least(1), default=None,
                        help="torch CPU threads in every notebook (default: on <= 2 cores both when idle, else 1; else torch's)")
    parser.add_argument("--train-images", type=int_at_least(1), default=None,
                        help="training images that get pseudo ground truth in notebooks 02-03 (default: the "
                             "profile's, lite 1000, quick all); shards already made for the same images are reused")
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 03")
    parser.add_argument("--category", default="birds", choices=CATEGORY_NAMES,
                        help="SynthBirds (default; outputs/<profile>/) or SynthCars (outputs/cars_<profile>/; "
                             "birds-only notebooks are skipped)")
    parser.add_argument("--notebook-dir", default=str(REPO_ROOT / "notebooks"), help=argparse.SUPPRESS)
    parser.add_argument("--rebuild", choices=STAGES, default=None,
                        help="recompute from this stage on instead of reusing earlier runs' caches "
                             "(data > pseudo_gt > gan > results); rebuilding data, pseudo_gt or gan also makes "
                             "notebooks 04-06 invert the GAN trained here instead of the shipped prior")
    parser.add_argument("--prior", choices=("shipped", "train"), default=None,
                        help="what notebooks 04-06 invert: the prior shipped in meshinv_lite/priors (default at "
                             "quick and lite) or the profile's own GAN of notebook 03 (trained if missing)")
    args = parser.parse_args(argv)  # numbers out of range (--train-images 0, ...) exit here, before any notebook
    from .config import check_device

    try:
        check_device(args.device)
        find_notebooks(Path(args.notebook_dir), args.only)
    except ValueError as e:
        parser.error(str(e))  # before anything is deleted or run; exits with status 2
    prior = args.prior
    if args.rebuild:
        for p in clear_stages(args.rebuild, args.profile, args.data_dir, args.output_root, args.category):
            print(f"[pipeline] --rebuild {args.rebuild}: removed {p}", flush=True)
        if args.rebuild != "results" and prior is None:
            prior = "train"
            print("[pipeline] notebooks 04-06 invert the GAN trained in this run (--prior train)", flush=True)
    out_root = results_dir(args.output_root, args.profile, args.category)
    try:
        runs = run_pipeline(args.profile, args.output_root, args.data_dir, args.device, args.seed, args.only,
                            notebook_dir=args.notebook_dir, prior=prior, threads=args.threads,
                            train_images=args.train_images, category=args.category)
    except KeyboardInterrupt:
        logging.disable(logging.CRITICAL)  # asyncio reports the abandoned cell task at exit; the line below says it
        print(f"\n[pipeline] interrupted; what finished is in {out_root / 'summary.md'}", file=sys.stderr)
        return 130
    table = out_root / EVALUATION_TABLE
    if table.exists() and any(r.name == table.parent.name and r.status == "ok" for r in runs):
        print(table.read_text())
        print(f"evaluation details: {table.parent}")
    print(f"{sum(r.status == 'ok' for r in runs)} of {len(runs)} notebooks ok"
          + (f" ({sum(r.status == 'skipped' for r in runs)} skipped: birds only)" if any(r.status == "skipped" for r in runs) else "")
          + "; every notebook's key figures: "
          f"{out_root / 'summary.md'}; kernel logs: {out_root / 'logs'}")
    print(f"outputs: {out_root}")
    return 0 if all(r.status in ("ok", "skipped") for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
