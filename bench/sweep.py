#!/usr/bin/env python
"""What a scaling sweep costs: the same sweep one run at a time and several at once, measured side by side in one run.

    python bench/sweep.py                              # CPU: the planted-small sweep, sequential and with 2 workers, idle and under load
    python bench/sweep.py --preset planted             # the scaling notebook's quick sweep (several minutes a variant)
    python bench/sweep.py --device cuda                # a GPU: 1, 2, 4 and 8 runs sharing it, and the WikiText-103 plan's cost

CPU. Three ways to run the same plan, each in a fresh process, timed end to end (data cached beforehand):
  - baseline: the sweep as lmlab ran it before lmlab.sweep, one run after another in one process on all of PyTorch's threads;
  - lmlab, 1 worker: lmlab.sweep.run_sweep with one worker process (one thread per run);
  - lmlab, 2 workers: the same with two runs at once (the default on 2 cores).
The records of the two lmlab ways must be equal bit for bit. Everything is measured idle and again "under load", while
another process keeps one core busy (bench/train_step.py's busy_core). The estimate that the scaling-sweep notebook shows
before a sweep starts (measure_slots + estimate_wall_seconds) is printed beside the measured times.

GPU. For each width of the default WikiText-103 plan, the tokens per second of one run while k = 1, 2, 4, 8 runs share one
GPU (measure_slots), the GPU's total, and the plan's wall time by that measured throughput with k runs at once.
Results: bench/results/sweep-<device>.json.
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_step import busy_core, commit  # the same load and the same commit stamp as the training-step benchmark


def child(a):
    "One variant, timed: prints {'seconds', 'losses'}."
    import dataclasses, torch
    from lmlab.chinchilla import preset_plan, run_record
    from lmlab.train import finish_run
    plan, data_cfg = preset_plan(a.preset, cache_dir=a.cache_dir)
    sweep_dir = Path(a.out)
    t0 = time.perf_counter()
    if a.child == "baseline":
        for r in plan.runs:  # lmlab's run_sweep before lmlab.sweep: in this process, one after another
            finish_run(sweep_dir / r.name, r.model, dataclasses.replace(data_cfg, seq_len=r.model.max_seq_len), r.train, callbacks=[])
        records = [run_record(sweep_dir / r.name, r.budget) for r in plan.runs]
    else:
        from lmlab.sweep import run_sweep
        records = run_sweep(sweep_dir, plan, data_cfg, workers=int(a.child), progress=False)
    print(json.dumps(dict(seconds=time.perf_counter() - t0, threads=torch.get_num_threads(),
                          losses={r["name"]: r["loss"] for r in records})))


def spawn(variant, a, tmp):
    out = Path(tmp) / f"{variant}-{time.monotonic_ns()}"
    res = subprocess.run([sys.executable, __file__, "--child", variant, "--preset", a.preset, "--cache-dir", a.cache_dir, "--out", str(out)],
                         capture_output=True, text=True)
    if res.returncode: sys.exit(f"{variant} failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def estimate(a, workers):
    "The notebook's estimate: measured tokens/s per run with `workers` runs at once, scheduled longest first."
    from lmlab.chinchilla import preset_plan
    from lmlab.sweep import device_slots, estimate_wall_seconds, measure_slots
    plan, _ = preset_plan(a.preset, cache_dir=a.cache_dir)
    return estimate_wall_seconds(plan, measure_slots(plan, device_slots("cpu", workers), steps=5), workers)


def cpu(a):
    from lmlab.chinchilla import preset_plan
    plan, data_cfg = preset_plan(a.preset, cache_dir=a.cache_dir)
    data_cfg.load(("train", "validation"), progress=False)  # cached once, outside the timings
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, load in (("idle", False), ("load", True)):
            with busy_core(load):
                runs = [{v: spawn(v, a, tmp) for v in ("baseline", "1", "2")} for _ in range(a.repeats)]
                est = {w: estimate(a, w) for w in (1, 2)}
            res[scenario] = dict({v: min((r[v] for r in runs), key=lambda x: x["seconds"]) for v in ("baseline", "1", "2")},
                                 estimate=est)
    idle, load = res["idle"], res["load"]
    equal = idle["1"]["losses"] == idle["2"]["losses"] == load["1"]["losses"] == load["2"]["losses"]
    base_diff = max(abs(idle["1"]["losses"][k] / v - 1) for k, v in idle["baseline"]["losses"].items())
    s = lambda x: f"{x:.1f}"
    rows = [("wall time, idle (s)", s(idle["baseline"]["seconds"]), s(idle["1"]["seconds"]), s(idle["2"]["seconds"]),
             f"{idle['baseline']['seconds'] / idle['2']['seconds']:.2f}x"),
            ("wall time under load (s)", s(load["baseline"]["seconds"]), s(load["1"]["seconds"]), s(load["2"]["seconds"]),
             f"{load['baseline']['seconds'] / load['2']['seconds']:.2f}x"),
            ("estimated before the sweep, idle (s)", "", s(idle["estimate"][1]), s(idle["estimate"][2]), ""),
            ("estimated before the sweep, under load (s)", "", s(load["estimate"][1]), s(load["estimate"][2]), ""),
            ("CPU threads per run", str(idle["baseline"]["threads"]), "1", "1", ""),
            ("final losses equal to 1 worker's, bit for bit", "", "", "yes" if equal else "NO", ""),
            ("largest relative difference of a final loss from the baseline's", "", f"{base_diff:.1e}", "", "")]
    name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"\nThe {a.preset!r} sweep ({len(plan.runs)} runs, {plan.total_tokens:,} tokens) on {name}; best of {a.repeats} run(s) each; "
          "'under load': another process keeps one core busy\n")
    print("| measure | baseline (one at a time, in one process) | lmlab, 1 worker | lmlab, 2 workers | baseline / 2 workers |")
    print("|---|---:|---:|---:|---:|")
    for r in rows: print("| " + " | ".join(r) + " |")
    return dict(device=name, preset=a.preset, runs=len(plan.runs), tokens=plan.total_tokens, idle=idle, under_load=load,
                equal_records=equal, max_rel_diff_from_baseline=base_diff, table=rows)


def gpu(a):
    import torch
    from lmlab.chinchilla import _duration, preset_plan
    from lmlab.sweep import device_slots, estimate_wall_seconds, measure_slots
    plan, _ = preset_plan("wikitext-103", unique_tokens=a.unique_tokens)
    speeds = {k: measure_slots(plan, device_slots("cuda:0", runs_per_gpu=k), steps=a.steps) for k in a.runs_per_gpu}
    wall = {k: estimate_wall_seconds(plan, speeds[k], k) for k in a.runs_per_gpu}
    widths = sorted(speeds[a.runs_per_gpu[0]])
    head = "| width | " + " | ".join(f"{k} at once: per run / GPU total (tok/s)" for k in a.runs_per_gpu) + " |"
    print(f"\nThe default WikiText-103 plan ({len(plan.runs)} runs, {plan.total_tokens / 1e9:.2f}B tokens) on {torch.cuda.get_device_name()}\n")
    print(head + "\n|---:|" + "---:|" * len(a.runs_per_gpu))
    rows = [[str(d)] + [f"{speeds[k][d]:,.0f} / {k * speeds[k][d]:,.0f}" for k in a.runs_per_gpu] for d in widths]
    rows.append(["whole plan, wall time"] + [_duration(wall[k]) for k in a.runs_per_gpu])
    for r in rows: print("| " + " | ".join(r) + " |")
    best = min(wall, key=wall.get)
    print(f"\nsequential: {_duration(wall[1] if 1 in wall else float('nan'))}; best: {best} runs at once, {_duration(wall[best])} "
          f"(target: 30 min or less)")
    return dict(device=torch.cuda.get_device_name(), runs=len(plan.runs), tokens=plan.total_tokens, tokens_per_s=speeds,
                wall_s=wall, best_runs_per_gpu=best, table=[head.strip("| ").split(" | ")] + rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--preset", default="planted-small", help="the CPU sweep (default: planted-small, about a minute a variant)")
    ap.add_argument("--repeats", type=int, default=1, help="CPU: runs of each variant; the best is kept")
    ap.add_argument("--runs-per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--steps", type=int, default=10, help="GPU: timed steps per measurement")
    ap.add_argument("--unique-tokens", type=int, default=115_000_000, help="GPU: WikiText-103's training tokens, for the plan")
    ap.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "lmlab-bench-cache"))
    ap.add_argument("--child"); ap.add_argument("--out")
    a = ap.parse_args()
    if a.child: return child(a)
    result = cpu(a) if a.device == "cpu" else gpu(a)
    result.update(commit=commit(), args={k: v for k, v in vars(a).items() if k not in ("child", "out")})
    out = HERE / "results" / f"sweep-{a.device}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
