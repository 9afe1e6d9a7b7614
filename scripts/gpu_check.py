#!/usr/bin/env python
"""The GPU check (`make gpu-check`): everything lmlab does on a GPU, in one bounded run on one GPU, offline.

    python scripts/gpu_check.py                 # at most 8 minutes, warm-up included
    python scripts/gpu_check.py --logs DIR      # keep each step's full output in DIR

Steps, each in its own process with its own time limit (a step that runs past it is stopped, with its workers, and
recorded as timed out; the next one starts):
  1. the GPU tests (tests/test_gpu.py), each test bounded by pytest-timeout;
  2. bench/train_step.py --device cuda: the lab log's model, lmlab beside the plain baseline;
  3. bench/sweep.py --device cuda: tokens/s per run with 1 and 4 runs sharing the GPU (4 with and without CUDA MPS), the
     default WikiText-103 plan's estimated wall time, and the plan cut to a small fraction, trained and timed;
  4. a real sweep on CUDA (the planted preset), its wall time beside the estimate made before it;
  5. lmlab-eval on CUDA for a quick run trained on CUDA.
Writes bench/results/gpu-check.json and bench/results/gpu-check.md (a table that the benchmarks page shows), with the
device's name and the commit. On a machine without a CUDA GPU it says so in one line and exits 0.
"""
import argparse, json, os, platform, re, signal, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
BUDGET_S = 480  # the whole check, on a GPU machine that has just started


def run_step(name, cmd, limit_s, logs: Path, env=None) -> dict:
    "Run one step in a process group of its own; stop the group at `limit_s`. Its output goes to logs/<name>.log."
    log = logs / f"{name}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        try: code = p.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL); p.wait(); code = None
        finally:
            try: os.killpg(p.pid, signal.SIGKILL)  # anything the step left behind
            except ProcessLookupError: pass
    seconds = time.perf_counter() - t0
    status = "timed out" if code is None else "ok" if code == 0 else f"failed (exit {code})"
    print(f"gpu-check: {name}: {status} in {seconds:.0f} s (log: {log})", flush=True)
    return dict(status=status, seconds=round(seconds, 1), log=str(log), output=log.read_text()[-4000:])


def command(entry: str) -> str:
    "A console script (lmlab-train is lmlab.train:main) as this Python runs it: the same, also where it is not installed."
    module, fn = entry.split(":")
    return f"'{sys.executable}' -c 'import sys; from {module} import {fn}; sys.exit({fn}())'"


def child_sweep(out_dir: Path):
    "Step 4 in its own process: estimate the planted sweep on CUDA, then run it; prints one JSON line."
    from lmlab.sweep import preset_plan
    from lmlab.sweep import describe_slots, device_slots, estimate_wall_seconds, measure_slots, run_sweep
    plan, data_cfg = preset_plan("planted", cache_dir=str(out_dir / "cache"))
    slots = device_slots("cuda")
    t0 = time.perf_counter()
    speeds = measure_slots(plan, slots, steps=5, wait_s=120, log=lambda l: print("  " + l, flush=True))
    estimate_cost = time.perf_counter() - t0
    estimated = estimate_wall_seconds(plan, speeds, len(slots))
    t0 = time.perf_counter()
    records = run_sweep(out_dir / "sweep", plan, data_cfg, device="cuda", progress=False)
    measured = time.perf_counter() - t0
    print(json.dumps(dict(runs=len(records), tokens=plan.total_tokens, slots=describe_slots(slots), estimated_s=estimated,
                          estimate_cost_s=estimate_cost, measured_s=measured)))


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try: return json.loads(line)
            except json.JSONDecodeError: return None
    return None


def summaries(steps: dict, started: dict) -> dict:
    "One line of figures per step, from its output or the results file it wrote."
    def fresh(path):  # a results file written by this check, not one committed earlier
        return json.loads(path.read_text()) if path.exists() and path.stat().st_mtime >= started["time"] else None
    out = {}
    t = steps.get("GPU tests")
    if t:
        m = re.findall(r"(\d+) (passed|failed|skipped|error)", t["output"])
        out["GPU tests"] = ", ".join(f"{n} {w}" for n, w in m[-4:]) or "no summary line"
    ts = fresh(RESULTS / "train_step-cuda.json")
    if ts:
        row = {r[0]: r for r in ts["table"]}
        out["training step"] = (f"lmlab {ts['lmlab']['tokens_per_s']:,.0f} tok/s, baseline {ts['baseline']['tokens_per_s']:,.0f} "
                                f"({ts['lmlab']['tokens_per_s'] / ts['baseline']['tokens_per_s']:.2f}x); "
                                f"{row['... share of measured matmul peak'][2]} of the measured matmul peak")
    sw = fresh(RESULTS / "sweep-cuda.json")
    if sw:
        best = sw["best"]["setup"]
        line = (f"best {best}: the GPU's total throughput {sw['total_throughput_gain'][best]:.2f}x {sw['alone']}'s; "
                f"the full plan estimated at {sw['wall_s'][best] / 60:.1f} min")
        mp = sw.get("measured_plan")
        if mp: line += (f"; cut to {mp['fraction']:g}: measured {mp['measured_s']:.0f} s, estimated {mp['estimated_s']:.0f} s, "
                        f"full plan extrapolated {mp['full_extrapolated_s'] / 60:.1f} min")
        out["sweep benchmark"] = line
    s = steps.get("planted sweep")
    res = last_json(s["output"]) if s else None
    if res:
        out["planted sweep"] = (f"{res['runs']} runs, {res['tokens'] / 1e6:.1f}M tokens on {res['slots']}: "
                                f"{res['measured_s']:.0f} s measured, {res['estimated_s']:.0f} s estimated "
                                f"(the estimate took {res['estimate_cost_s']:.0f} s)")
    e = steps.get("lmlab-eval")
    if e:
        m = re.search(r"word_perplexity\S*\s*\|[^|]*\|\s*([\d.]+)", e["output"])
        out["lmlab-eval"] = f"word perplexity {m.group(1)}" if m else "no word perplexity in its output"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logs", help="folder for each step's full output (default: a new temporary folder)")
    ap.add_argument("--budget-s", type=float, default=BUDGET_S, help=f"the whole check's time (default: {BUDGET_S})")
    ap.add_argument("--child", choices=["sweep"]); ap.add_argument("--out")
    a = ap.parse_args()
    if a.child: return child_sweep(Path(a.out))
    import torch
    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA GPU on this machine (torch {torch.__version__}): nothing to check; run it on a GPU machine")
        return
    from train_step import commit
    logs = Path(a.logs or tempfile.mkdtemp(prefix="lmlab-gpu-check-")); logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lmlab-gpu-check-work-"))
    py = sys.executable
    quick_run = work / "quick-run"
    # (name, command, share of the budget)
    plan = [
        ("GPU tests", [py, "-m", "pytest", "tests/test_gpu.py", "-q", "-rs", "--timeout", "120", "-p", "no:cacheprovider"], 0.30),
        ("training step", [py, "bench/train_step.py", "--device", "cuda", "--batch-size", "32", "--repeats", "1",
                           "--steps", "20"], 0.15),
        ("sweep benchmark", [py, "bench/sweep.py", "--device", "cuda", "--runs-per-gpu", "1", "4", "--mps", "off", "auto",
                             "--steps", "5", "--wait-s", "60", "--measure-plan", "0.01"], 0.25),
        ("planted sweep", [py, __file__, "--child", "sweep", "--out", work], 0.18),
        ("lmlab-eval", ["bash", "-c", f"{command('lmlab.train:main')} --profile experiment1-quick --run-dir '{quick_run}' --device cuda "
                                      f"--cache-dir '{work}/cache' && {command('lmlab.harness:main')} '{quick_run}' "
                                      f"--device cuda"], 0.12),
    ]
    started = dict(time=time.time())
    t0, steps = time.perf_counter(), {}
    for name, cmd, share in plan:
        left = a.budget_s - (time.perf_counter() - t0)
        if left < 10:
            steps[name] = dict(status="not run: the check's time was spent", seconds=0, log="", output=""); continue
        steps[name] = run_step(name, cmd, min(left, share * a.budget_s + 15), logs,
                               env={"LMLAB_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    figures = summaries(steps, started)
    import triton
    result = dict(device=torch.cuda.get_device_name(), commit=commit(), torch=torch.__version__, triton=triton.__version__,
                  python=platform.python_version(), seconds=round(time.perf_counter() - t0, 1), budget_s=a.budget_s,
                  steps={k: {kk: vv for kk, vv in v.items() if kk != "output"} | dict(figures=figures.get(k, ""))
                         for k, v in steps.items()})
    rows = ["| step | status | seconds | figures |", "|---|---|---:|---|"]
    rows += [f"| {k} | {v['status']} | {v['seconds']:.0f} | {figures.get(k, '')} |" for k, v in steps.items()]
    md = (f"GPU check on {result['device']} (torch {result['torch']}, Triton {result['triton']}), code at commit "
          f"{result['commit']}: {result['seconds']:.0f} s of a {a.budget_s:.0f} s budget\n\n" + "\n".join(rows) + "\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu-check.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "gpu-check.md").write_text(md)
    print("\n" + md + f"\nsaved bench/results/gpu-check.json and gpu-check.md; logs in {logs}")
    if any(v["status"] != "ok" for v in steps.values()): sys.exit(1)


if __name__ == "__main__":
    main()
