#!/usr/bin/env python
"""Run an experiment notebook headless, as `make run` does for Experiment 1.

    python scripts/run_experiment.py nbs/experiments/01_experiment1.ipynb [--mode quick|full] [--runs runs]

The notebook runs top to bottom in a fresh kernel with LMLAB_MODE and LMLAB_RUNS set; its run directory (config, metrics,
checkpoints, loss.png, lab_log.md) lands under --runs, and the executed notebook is saved beside them.
"""
import argparse, os, sys, time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--mode", choices=["quick", "full"], default="quick")
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    a = ap.parse_args()
    if not a.notebook.exists(): sys.exit(f"no notebook at {str(a.notebook)!r}")
    runs = a.runs.resolve()
    os.environ.update(LMLAB_MODE=a.mode, LMLAB_RUNS=str(runs))
    nb = nbformat.read(a.notebook, as_version=4)
    print(f"running {a.notebook} in {a.mode} mode; runs under {runs}", flush=True)
    t0 = time.time()
    ExecutePreprocessor(timeout=None, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(a.notebook.parent.resolve())}})
    name = a.notebook.stem.split("_", 1)[-1]
    run_dir = runs / f"{name}-{a.mode}"
    out = (run_dir if run_dir.exists() else runs) / a.notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    print(f"done in {time.time() - t0:.0f} s; executed notebook: {out}")
    for f in ("lab_log.md", "loss.png", "metrics.jsonl", "mha_model_best.pt"):
        if (run_dir / f).exists(): print(f"  {run_dir / f}")


if __name__ == "__main__":
    main()
