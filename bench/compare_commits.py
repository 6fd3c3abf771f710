"""Speed of two commits side by side: the same bench script run alternately on each, in the same session.

Checks out ``--old`` and ``--new`` (default: HEAD) into temporary git worktrees, then runs the bench script
``--bench`` (a path inside the repository, plus its arguments) from each worktree with that worktree's
package first on ``PYTHONPATH``, alternating old/new for ``--rounds`` rounds, so that a machine's load
drifts over both alike. Every ``key=value`` line a run prints is read (the last one is the figure compared);
prints every round, the median of each commit for every key and the ratio old / new. Last line:
``speedup_<key>=<float>`` for the last key.

``--script-from new`` runs the new commit's copy of the bench script against both packages (each worktree's
``meshinv_lite`` still comes first on ``PYTHONPATH``): for a workload the old commit's script cannot express
(e.g. inverting with the shipped prior's weights), written against APIs both commits have.

    python bench/compare_commits.py --old 3f9f6f2 --bench "bench/invert.py --profile lite --images 8 --threads 1"
    python bench/compare_commits.py --old 32520ad --script-from new --bench "bench/invert.py --prior shipped"
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), commit], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return where


def _env(tree: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(tree), MESHINV_ROOT=str(REPO))


def _check_import(tree: Path) -> None:
    """The package a run imports must be the worktree's, not the editable install of this checkout."""
    where = subprocess.run([sys.executable, "-c", "import meshinv_lite; print(meshinv_lite.__file__)"], cwd=tree,
                           env=_env(tree), capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"runs in {tree} import meshinv_lite from {where}, not from the worktree")


def _run(tree: Path, bench: list[str], script_tree: Path) -> tuple[dict[str, float], str]:
    """Run ``bench`` (its script taken from ``script_tree``) in ``tree``; its ``key=value`` lines, in order."""
    script = str(script_tree / bench[0])
    proc = subprocess.run([sys.executable, script, *bench[1:]], cwd=tree, env=_env(tree), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(bench)} failed in {tree} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    values: dict[str, float] = {}
    for line in proc.stdout.strip().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and " " not in line.strip():
            try:
                values[key] = float(value)
            except ValueError:
                continue
    if not values:
        raise SystemExit(f"{' '.join(bench)} printed no key=value line in {tree}:\n{proc.stdout[-2000:]}")
    return values, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the commit to compare against (e.g. the one before a change)")
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--bench", required=True, help='a bench script and its arguments, e.g. "bench/invert.py --images 4"')
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--script-from", default="each", choices=["each", "new"],
                        help="each commit runs its own copy of the bench script (default), or both run the new one's")
    args = parser.parse_args()
    bench = shlex.split(args.bench)
    with tempfile.TemporaryDirectory(prefix="meshinv-compare-") as tmp:
        trees = {"old": _worktree(args.old, Path(tmp) / "old"), "new": _worktree(args.new, Path(tmp) / "new")}
        try:
            for tree in trees.values():
                _check_import(tree)
            results: dict[str, list[dict]] = {"old": [], "new": []}
            for r in range(args.rounds):
                for which in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    script_tree = trees["new"] if args.script_from == "new" else trees[which]
                    values, _ = _run(trees[which], bench, script_tree)
                    results[which].append(values)
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                    print(f"round {r + 1} {which:>3} ({args.old if which == 'old' else args.new}): {shown}", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    keys = [k for k in results["new"][-1] if all(k in v for v in results["old"] + results["new"])]
    if not keys:
        raise SystemExit("the two commits' runs printed no key in common")
    ratio = {}
    for key in keys:
        old = statistics.median(v[key] for v in results["old"])
        new = statistics.median(v[key] for v in results["new"])
        ratio[key] = old / new
        print(f"median old {old:.4g}, new {new:.4g} ({key}); old / new = {ratio[key]:.2f}")
    print(f"speedup_{keys[-1]}={ratio[keys[-1]]:.3f}")


if __name__ == "__main__":
    main()
