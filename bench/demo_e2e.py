"""End to end, as a newcomer runs it: ``make demo`` on a fresh clone of each commit, timed, install included.

For every commit in ``--commits`` (in that order, repeated ``--rounds`` times, the order reversed on every
other round so that drift in the machine's load falls on both alike), clones this repository into a
temporary folder, checks the commit out and runs ``make demo PROFILE=<profile>`` there: a new ``.venv``
(pip's cache is shared, as on a machine that installed once before), the data, every notebook. Prints each
run's wall time and its notebooks' own times (the pipeline's ``ok in`` lines), then the median per commit.
Last lines: ``demo_s_<profile>_<commit>=<float>`` per commit, then ``speedup_demo_<profile>=<old / new>``
when two commits are given (the first is the old one).

    python bench/demo_e2e.py --profile quick                       # this commit, once
    python bench/demo_e2e.py --profile lite --commits 32520ad HEAD  # issue 17's side-by-side (about 55 min)
"""
from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_LINE = re.compile(r"\[pipeline\] (\S+\.ipynb): ok in ([0-9.]+) s")


def run_demo(commit: str, profile: str, where: Path) -> tuple[float, dict[str, float], float]:
    """Clone ``commit`` into ``where`` and time ``make demo``. Returns (wall s, notebook s by name, peak RSS MB)."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "checkout", "-q", "--detach", commit], check=True)
    start = time.perf_counter()
    proc = subprocess.run(["make", "demo", f"PROFILE={profile}"], cwd=where, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"make demo PROFILE={profile} failed at {commit} (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    notebooks = {m.group(1): float(m.group(2)) for m in NOTEBOOK_LINE.finditer(proc.stdout)}
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return wall, notebooks, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["quick", "lite"])
    parser.add_argument("--commits", nargs="+", default=["HEAD"], help="old first, then new (default: HEAD alone)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", default=None, help="copy each run's outputs/<profile> to KEEP/<commit> (to look at them)")
    args = parser.parse_args()
    commits = [subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", c], check=True, capture_output=True,
                              text=True).stdout.strip() for c in args.commits]
    walls: dict[str, list[float]] = {c: [] for c in commits}
    for round_ in range(args.rounds):
        order = commits if round_ % 2 == 0 else commits[::-1]
        for commit in order:
            with tempfile.TemporaryDirectory(prefix="meshinv-demo-") as tmp:
                wall, notebooks, peak_mb = run_demo(commit, args.profile, Path(tmp) / "clone")
                if args.keep:
                    shutil.copytree(Path(tmp) / "clone" / "outputs" / args.profile, Path(args.keep) / commit,
                                    dirs_exist_ok=True)
            walls[commit].append(wall)
            per_nb = ", ".join(f"{name.split('_')[0]} {s:.0f}s" for name, s in notebooks.items())
            print(f"round {round_ + 1} {commit}: make demo PROFILE={args.profile} {wall:.1f} s "
                  f"({wall / 60:.1f} min; notebooks {sum(notebooks.values()):.0f} s: {per_nb}; "
                  f"largest process so far {peak_mb:.0f} MB)", flush=True)
    for commit in commits:
        print(f"demo_s_{args.profile}_{commit}={statistics.median(walls[commit]):.1f}")
    if len(commits) == 2:
        old, new = (statistics.median(walls[c]) for c in commits)
        print(f"speedup_demo_{args.profile}={old / new:.3f}")


if __name__ == "__main__":
    sys.exit(main())
