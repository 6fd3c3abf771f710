"""Speed of two commits side by side: the same bench script run alternately on each, in the same session.

Checks out ``--old`` and ``--new`` (default: HEAD) into temporary git worktrees, then runs the bench script
``--bench`` (a path inside the repository, plus its arguments) from each worktree with that worktree's
package first on ``PYTHONPATH``, alternating old/new for ``--rounds`` rounds, so that a machine's load
drifts over both alike. Each run's last ``key=value`` line is read; prints every round, the median of each
commit and the ratio old / new. Last line: ``speedup_<key>=<float>``.

    python bench/compare_commits.py --old 3f9f6f2 --bench "bench/invert.py --profile lite --images 8 --threads 1"
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


def _run(tree: Path, bench: list[str], env_extra: dict) -> tuple[str, float, str]:
    env = dict(_env(tree), **env_extra)
    proc = subprocess.run([sys.executable, *bench], cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(bench)} failed in {tree} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [line.strip() for line in proc.stdout.strip().splitlines() if "=" in line and " " not in line.strip()]
    if not lines:
        raise SystemExit(f"{' '.join(bench)} printed no key=value line in {tree}:\n{proc.stdout[-2000:]}")
    key, value = lines[-1].split("=", 1)
    return key, float(value), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the commit to compare against (e.g. the one before a change)")
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--bench", required=True, help='a bench script and its arguments, e.g. "bench/invert.py --images 4"')
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bench = shlex.split(args.bench)
    with tempfile.TemporaryDirectory(prefix="meshinv-compare-") as tmp:
        trees = {"old": _worktree(args.old, Path(tmp) / "old"), "new": _worktree(args.new, Path(tmp) / "new")}
        try:
            for tree in trees.values():
                _check_import(tree)
            results: dict[str, list[float]] = {"old": [], "new": []}
            key = ""
            for r in range(args.rounds):
                for which in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    key, value, _ = _run(trees[which], bench, {})
                    results[which].append(value)
                    print(f"round {r + 1} {which:>3} ({args.old if which == 'old' else args.new}): {key}={value:.4g}", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old, new = statistics.median(results["old"]), statistics.median(results["new"])
    print(f"median old {old:.4g}, new {new:.4g} ({key}); old / new = {old / new:.2f}")
    print(f"speedup_{key}={old / new:.3f}")


if __name__ == "__main__":
    main()
