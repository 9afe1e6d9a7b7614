#!/usr/bin/env python
"""What a scaling sweep costs: the same sweep one run at a time and several at once, measured side by side in one run.

    python bench/sweep.py                              # CPU: the planted-small sweep, sequential and with 2 workers, idle and under load
    python bench/sweep.py --preset planted             # the scaling notebook's quick sweep (several minutes a variant)
    python bench/sweep.py --device cuda                # a GPU: 1, 2, 4 and 8 runs sharing it, and the WikiText-103 plan's cost
    python bench/sweep.py --device cuda --runs-per-gpu 1 4 --measure-plan 0.05   # ... and the plan cut to 5%, trained

CPU. Three ways to run the same plan, each in a fresh process, timed end to end (data cached beforehand):
  - baseline: the sweep as lmlab ran it before lmlab.sweep, one run after another in one process on all of PyTorch's threads;
  - lmlab, 1 worker: lmlab.sweep.run_sweep with one worker process (one thread per run);
  - lmlab, 2 workers: the same with two runs at once (the default on 2 cores).
The records of the two lmlab ways must be equal bit for bit. Everything is measured idle and again "under load", while
another process keeps one core busy (bench/train_step.py's busy_core). The estimate that the scaling-sweep notebook shows
before a sweep starts (measure_slots + estimate_wall_seconds) is printed beside the measured times.

GPU. For each width of the default WikiText-103 plan, the tokens per second of one run while k = 1, 2, 4, 8 runs share one
GPU (measure_slots, each width's figure printed as it comes), the GPU's total, and the plan's wall time by that measured
throughput with k runs at once. --measure-plan FRACTION then trains the plan's runs cut to FRACTION of their tokens with
the best k, on a generated corpus of WikiText-103's size in GPT-2 tokens, and prints the measured time beside the
estimate and the full plan's time extrapolated from it. Without a GPU, --device cuda stops in one line.
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
    from lmlab.sweep import preset_plan, run_record
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
    from lmlab.sweep import preset_plan
    from lmlab.sweep import device_slots, estimate_wall_seconds, measure_slots
    plan, _ = preset_plan(a.preset, cache_dir=a.cache_dir)
    return estimate_wall_seconds(plan, measure_slots(plan, device_slots("cpu", workers), steps=5), workers)


def cpu(a):
    from lmlab.sweep import preset_plan
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
    """Runs per GPU, with and without CUDA MPS: each width's tokens/s per run with k runs sharing the GPU, and the plan's
    wall time from them; then --measure-plan with the best setup."""
    import torch
    from lmlab.sweep import preset_plan
    from lmlab.cli import human_duration
    from lmlab.sweep import device_slots, estimate_wall_seconds, measure_slots, with_train
    plan, _ = preset_plan("wikitext-103", unique_tokens=a.unique_tokens)
    if a.cuda_graphs: plan = with_train(plan, cuda_graphs=True)
    name = torch.cuda.get_device_name()
    print(f"The default WikiText-103 plan ({len(plan.runs)} runs, {plan.total_tokens / 1e9:.2f}B tokens) on {name}", flush=True)
    setups = [(k, mps) for k in a.runs_per_gpu for mps in (a.mps if k > 1 else ["off"])]  # one run alone: nothing to share
    label = lambda k, mps: f"{k} at once" + (f", mps {mps}" if k > 1 else "")
    speeds = {}
    for k, mps in setups:
        print(f"\n{label(k, mps)}:", flush=True)
        speeds[label(k, mps)] = measure_slots(plan, device_slots("cuda:0", runs_per_gpu=k), steps=a.steps, wait_s=a.wait_s,
                                              log=lambda line: print("  " + line, flush=True), mps=mps)
    runs_at_once = {label(k, mps): k for k, mps in setups}
    wall = {s: estimate_wall_seconds(plan, speeds[s], runs_at_once[s]) for s in speeds}
    widths = sorted(next(iter(speeds.values())))
    alone = label(min(a.runs_per_gpu), "off")
    total = lambda s: sum(runs_at_once[s] * speeds[s][d] for d in widths)
    gain = {s: total(s) / total(alone) for s in speeds}
    head = ["width"] + [f"{s}: per run / GPU total (tok/s)" for s in speeds]
    rows = [[str(d)] + [f"{speeds[s][d]:,.0f} / {runs_at_once[s] * speeds[s][d]:,.0f}" for s in speeds] for d in widths]
    rows.append(["GPU total vs " + alone] + [f"{gain[s]:.2f}x" for s in speeds])
    rows.append(["whole plan, wall time (estimated)"] + [human_duration(wall[s]) for s in speeds])
    print("\n| " + " | ".join(head) + " |\n|---:|" + "---:|" * len(speeds))
    for r in rows: print("| " + " | ".join(r) + " |")
    best = min(wall, key=wall.get)
    print(f"\nbest: {best}, {human_duration(wall[best])} for the whole plan (target: 10 min or less); the GPU's total "
          f"throughput {gain[best]:.2f}x {alone}'s, summed over the widths (target: 3x)")
    out = dict(device=name, runs=len(plan.runs), tokens=plan.total_tokens, tokens_per_s=speeds, wall_s=wall,
               total_throughput_gain=gain, best=dict(setup=best, runs_per_gpu=runs_at_once[best]), alone=alone,
               table=[head] + rows)
    if a.measure_plan:
        k, mps = next((k, m) for k, m in setups if label(k, m) == best)
        out["measured_plan"] = measure_plan(plan, a.measure_plan, device_slots("cuda:0", runs_per_gpu=k), speeds[best],
                                            a.unique_tokens, mps=mps)
    return out


def _train_cut_run(run, corpus, sweep_dir, slot):
    "One run of the cut plan in a sweep worker, on the generated corpus: its tokens seen."
    import numpy as np
    from lmlab.sweep import enter_slot
    from lmlab.train import Trainer
    enter_slot(slot)
    ids = {split: np.memmap(path, dtype=np.uint16, mode="r") for split, path in corpus.items()}
    summary = Trainer(Path(sweep_dir) / run.name, run.model, train_cfg=run.train, callbacks=[], progress=False,
                      corpus=ids).fit()
    return summary["tokens_seen"]


def measure_plan(plan, fraction, slots, speeds, unique_tokens, val_tokens=65_536, mps="off"):
    """Train every run of `plan` cut to `fraction` of its tokens on `slots`, longest first as run_sweep schedules them, on
    uniform random GPT-2 ids as many as `unique_tokens` (timing does not depend on what the text says). The measured time
    beside the estimate from `speeds` (tokens/s per run by width), and the full plan's time extrapolated from it."""
    import dataclasses, numpy as np
    from lmlab.cli import human_duration
    from lmlab.sweep import run_flops, estimate_wall_seconds, gpu_sharing, in_processes
    cut_runs = []
    for r in plan.runs:
        steps = max(1, round(r.tokens_to_train * fraction) // (plan.batch_size * plan.seq_len))
        tokens = steps * plan.batch_size * plan.seq_len
        train = dataclasses.replace(r.train, max_tokens=tokens, eval_every=None, warmup_steps=min(r.train.warmup_steps, steps // 10))
        cut_runs.append(dataclasses.replace(r, train=train, tokens_to_train=tokens))
    cut = dataclasses.replace(plan, runs=cut_runs)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = {}
        for split, n in (("train", unique_tokens), ("validation", val_tokens)):
            corpus[split] = str(Path(tmp) / f"{split}.bin")
            np.random.default_rng(len(split)).integers(0, 50257, n, dtype=np.uint16).tofile(corpus[split])
        jobs = [(r.name, _train_cut_run, (r, corpus, str(Path(tmp) / "sweep"))) for r in sorted(cut.runs, key=run_flops, reverse=True)]
        print(f"\nthe plan cut to {fraction:g} of its tokens ({cut.total_tokens / 1e6:,.1f}M tokens), "
              f"{len(slots)} runs at once:", flush=True)
        t0 = time.perf_counter()
        with gpu_sharing(slots, mps) as shared: results, failures = in_processes(jobs, shared, max_retries=0)
        measured = time.perf_counter() - t0
    if failures: sys.exit("bench/sweep.py: the cut plan failed: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    estimated = estimate_wall_seconds(cut, speeds, len(slots))
    full_estimate = estimate_wall_seconds(plan, speeds, len(slots))
    print(f"  measured {human_duration(measured)}, estimated {human_duration(estimated)} (training only: each run's "
          f"start and final evaluation are in the measured time); the full plan: {human_duration(measured / fraction)} extrapolated from "
          f"the measured time, {human_duration(full_estimate)} estimated (target: 10 min or less)")
    return dict(fraction=fraction, runs_at_once=len(slots), tokens=cut.total_tokens, measured_s=measured,
                estimated_s=estimated, full_extrapolated_s=measured / fraction, full_estimated_s=full_estimate)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--preset", default="planted-small", help="the CPU sweep (default: planted-small, about a minute a variant)")
    ap.add_argument("--repeats", type=int, default=1, help="CPU: runs of each variant; the best is kept")
    ap.add_argument("--runs-per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--steps", type=int, default=10, help="GPU: timed steps per measurement")
    ap.add_argument("--mps", nargs="+", choices=["auto", "on", "off"], default=["off", "auto"],
                    help="GPU: CUDA MPS settings to measure each k > 1 with (gpu_sharing); 'off auto' compares them")
    ap.add_argument("--cuda-graphs", action="store_true", help="GPU: every run's steps replayed as CUDA graphs")
    ap.add_argument("--wait-s", type=float, default=300, help="GPU: the longest any slot may take to warm up or time a width")
    ap.add_argument("--measure-plan", type=float, metavar="FRACTION",
                    help="GPU: also train the plan's runs cut to FRACTION of their tokens (0.05 fits in minutes), timed")
    ap.add_argument("--unique-tokens", type=int, default=115_000_000, help="GPU: WikiText-103's training tokens, for the plan")
    ap.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "lmlab-bench-cache"))
    ap.add_argument("--child"); ap.add_argument("--out")
    a = ap.parse_args()
    if a.child: return child(a)
    if a.measure_plan is not None and not 0 < a.measure_plan <= 1:
        sys.exit(f"bench/sweep.py: --measure-plan must be a fraction in (0, 1], got {a.measure_plan}")
    if a.device == "cuda":
        import torch
        if not torch.cuda.is_available():  # before any worker starts
            sys.exit(f"bench/sweep.py: --device cuda asked for, but this machine has no CUDA GPU that torch "
                     f"{torch.__version__} can use: run it on a GPU machine, or without --device cuda")
    from lmlab.sweep import SlotError
    try: result = cpu(a) if a.device == "cpu" else gpu(a)
    except SlotError as e: sys.exit(f"bench/sweep.py: {e}")
    except KeyboardInterrupt: sys.exit("bench/sweep.py: interrupted; every worker was stopped")
    result.update(commit=commit(), args={k: v for k, v in vars(a).items() if k not in ("child", "out")})
    out = HERE / "results" / f"sweep-{a.device}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
