#!/usr/bin/env python
"""Run an experiment notebook headless, as `make run` does for Experiment 1, with the values of its parameters cell set.

    python scripts/run_experiment.py nbs/experiments/01_experiment1.ipynb [--mode quick|full] [--runs runs] [-p NAME VALUE ...]

Each experiment notebook has a cell tagged `parameters` (papermill's convention): `-p epochs 1 -p lr 1e-3` sets `EPOCHS` and `LR`
there (names are case-insensitive; values are read as Python literals, else kept as text). `papermill` itself works the same way:
`papermill NOTEBOOK out.ipynb -p EPOCHS 1`. The notebook runs top to bottom in a fresh kernel; its run directory (config, metrics,
checkpoints, loss.png, lab_log.md) lands under --runs, with the executed notebook (its injected parameters cell included) beside them.
"""
import argparse, ast, os, shutil, sys, tempfile, time
from pathlib import Path


def literal(text: str):
    "A Python literal if the text is one (1, 3e-4, None, 'x'), else the text itself."
    try: return ast.literal_eval(text)
    except (ValueError, SyntaxError): return text


def local_kernel(folder):
    "A kernel configuration for this machine alone: its sockets are files in `folder` (IPC), not TCP ports."
    from traitlets.config import Config
    config = Config()
    # over TCP, any local user could reach the kernel, and ipykernel warns so on every start; IPC sockets are private files
    config.KernelManager.transport, config.KernelManager.ip = "ipc", str(Path(folder) / "kernel")
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--mode", choices=["quick", "full"], default="quick", help="quick: generated data, a few steps; full: WikiText")
    ap.add_argument("--runs", type=Path, default=Path("runs"), help="folder that receives the run directory (default runs/)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="set a value of the notebook's parameters cell, e.g. -p epochs 1")
    a = ap.parse_args()
    fail = lambda msg: sys.exit(f"run_experiment.py: error: {msg}")
    if not a.notebook.exists(): fail(f"no notebook at {str(a.notebook)!r}")
    import papermill as pm
    declared = pm.inspect_notebook(str(a.notebook))  # the names in its parameters cell
    if not declared: fail(f"{a.notebook} has no cell tagged 'parameters'")
    params = {"MODE": a.mode}
    for name, value in a.parameter:
        if name.upper() not in declared: fail(f"{name!r} is not a parameter of {a.notebook.name}: use one of {', '.join(sorted(declared))}")
        params[name.upper()] = literal(value)
    runs = a.runs.resolve()
    os.environ.update(LMLAB_MODE=a.mode, LMLAB_RUNS=str(runs))
    print(f"running {a.notebook} in {a.mode} mode with {params}; runs under {runs}", flush=True)
    t0 = time.time()
    name = a.notebook.stem.split("_", 1)[-1]
    run_dir = Path(params["RUN_DIR"]) if params.get("RUN_DIR") else runs / f"{name}-{a.mode}"
    if not run_dir.is_absolute(): run_dir = a.notebook.parent.resolve() / run_dir
    with tempfile.TemporaryDirectory() as tmp:
        executed, failure = Path(tmp) / a.notebook.name, None
        try: pm.execute_notebook(str(a.notebook), str(executed), parameters=params, cwd=str(a.notebook.parent.resolve()),
                                 kernel_name="python3", progress_bar=False, config=local_kernel(tmp))
        except pm.PapermillExecutionError as e: failure = e
        finally:  # kept either way: on a failure it holds the whole traceback
            out = (run_dir if run_dir.exists() else runs) / a.notebook.name
            out.parent.mkdir(parents=True, exist_ok=True)
            if executed.exists(): shutil.copyfile(executed, out)
    if failure is not None:
        message = " ".join(str(failure.evalue).split()) or "(no message)"
        fail(f"{a.notebook.name} failed in cell [{failure.exec_count or failure.cell_index}] with {failure.ename}: {message}. "
             f"The executed notebook, with the whole traceback: {out}")
    print(f"done in {time.time() - t0:.0f} s; executed notebook: {out}")
    for f in ("lab_log.md", "loss.png", "metrics.jsonl", "mha_model_best.pt"):
        if (run_dir / f).exists(): print(f"  {run_dir / f}")


if __name__ == "__main__":
    main()
