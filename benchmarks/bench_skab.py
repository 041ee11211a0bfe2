"""SKAB: the shipped pump-v1 configuration, and what choosing a configuration is worth on unseen files.

Three parts, all through the agent's own code path (``models.skab.score_file``):

1. the shipped configuration, pooled over every file (what ``signalcraft-model benchmark skab`` prints);
2. a small grid of configurations (window, z limit, thermal allowance), pooled, to show how flat the
   neighbourhood of the shipped choice is;
3. leave-files-out cross-validation: the files are split into folds; for each fold the configuration is
   chosen on the *other* files only (highest F1 with FAR ≤ 10 %), then scored on the held-out files;
   the held-out counts are pooled. This is the honest estimate for files the choice never saw.

    python benchmarks/bench_skab.py [DIR] [--folds N] [--json]

DIR defaults to ``$SIGNALCRAFT_SKAB_DIR`` or ``../shared/datasets/skab`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from models import pump, skab

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = (10, 20)
Z_LIMITS = (4.0, 5.0, 6.0)
ALLOWANCES = (1.0, 2.0)
MAX_FAR = 10.0


def default_dir() -> Path:
    return Path(os.environ.get("SIGNALCRAFT_SKAB_DIR", ROOT.parent / "shared" / "datasets" / "skab"))


def config(window: int, z_limit: float, allowance: float) -> pump.PumpConfig:
    channels = tuple(replace(c, allowance=allowance) if c.allowance else c for c in pump.SKAB_CHANNELS)
    return pump.PumpConfig(channels=channels, window=window, z_limit=z_limit)


def score_grid(recs: list[skab.Recording]) -> dict[tuple[int, float, float], list[skab.FileResult]]:
    out = {}
    for key in itertools.product(WINDOWS, Z_LIMITS, ALLOWANCES):
        with tempfile.TemporaryDirectory() as d:
            pump.export(config(*key), Path(d))
            out[key] = [skab.score_file(r, Path(d)) for r in recs]
    return out


def choose(grid: dict[tuple[int, float, float], list[skab.FileResult]], names: set[str]) -> tuple:
    """The configuration with the best pooled F1 at FAR ≤ 10 % on the files in ``names``."""

    def rank(key: tuple) -> tuple[bool, float]:
        m = skab.pool([r for r in grid[key] if r.name in names])
        return (m["far"] <= MAX_FAR, m["f1"])

    return max(grid, key=rank)


def cross_validate(grid: dict, names: list[str], folds: int) -> tuple[dict[str, float], list[dict]]:
    held_out: list[skab.FileResult] = []
    detail = []
    for k in range(folds):
        test = {n for i, n in enumerate(names) if i % folds == k}
        key = choose(grid, set(names) - test)
        results = [r for r in grid[key] if r.name in test]
        held_out += results
        detail.append({"fold": k, "chosen": key, "test_files": sorted(test), **skab.pool(results)})
    return skab.pool(held_out), detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, default=default_dir())
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recs = [skab.load(p, args.dir) for p in skab.find_files(args.dir)]
    names = [r.name for r in recs]
    shipped = (pump.WINDOW, pump.Z_LIMIT, pump.SKAB_CHANNELS[4].allowance)
    grid = score_grid(recs)
    cv, folds = cross_validate(grid, names, args.folds)
    report = {
        "shipped": {"config": shipped, **skab.pool(grid[shipped]), "files": len(recs)},
        "grid": [{"config": k, **skab.pool(v)} for k, v in grid.items()],
        "cross_validation": {"folds": args.folds, **cv, "per_fold": folds},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print("window  z_limit  allowance     F1     FAR %   MAR %")
    for row in report["grid"]:
        w, z, a = row["config"]
        mark = "  <- shipped" if row["config"] == shipped else ""
        print(f"{w:>6} {z:>8} {a:>10} {row['f1']:>7.3f} {row['far']:>8.2f} {row['mar']:>7.2f}{mark}")
    print(f"\nleave-files-out ({args.folds} folds, chosen on the other files, scored on the held-out):")
    for f in folds:
        print(f"  fold {f['fold']}: chose {f['chosen']}  F1 {f['f1']:.3f}  FAR {f['far']:.2f} %")
    print(f"  pooled held-out: F1 {cv['f1']:.3f}  FAR {cv['far']:.2f} %  MAR {cv['mar']:.2f} %")
    s = report["shipped"]
    print(f"\nshipped {shipped} on all {s['files']} files: F1 {s['f1']:.3f}  FAR {s['far']:.2f} %")


if __name__ == "__main__":
    main()
