#!/usr/bin/env python
"""Training step and validation pass of the lab log's model: lmlab vs a plain baseline, side by side in one run.

    python bench/train_step.py                         # CPU, Experiment 1's batch of 8 x 512
    python bench/train_step.py --device cuda --batch-size 32 --compile   # a GPU, Experiment 2's batch
    python bench/train_step.py --device cuda --batch-size 32 --cuda-graphs   # ... and each step replayed as a CUDA graph

The baseline is the same LanguageModel computing full float32 logits and F.cross_entropy (as nanoGPT does), trained by
a plain loop with the same optimizer, on the same batches. lmlab is its Trainer (chunked loss on a CPU, the fused loss kernels and bf16 autocast on CUDA).
Each variant runs in its own process (one's allocations would slow the other), twice by default, alternating, and the
better run of each is kept (interference on a shared machine only slows runs down). Everything is measured twice: on an
idle machine, and "under load", while another process (started and stopped by this script) keeps one core busy with a
plain Python loop, as a browser or a second notebook would on a researcher's machine. Each reports the median step time,
tokens per second, peak memory and its per-step losses, which must agree to float32 rounding; the validation pass
reports its time and total loss, likewise alternated and kept best of the repeats. Results are printed as a
table and saved to bench/results/train_step-<device>.json.
"""
import argparse, contextlib, json, os, platform, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def peak_mb(device):
    import torch
    if device.startswith("cuda"): return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device):
    import torch
    if device.startswith("cuda"): torch.cuda.synchronize()


def tokens(n, seed):
    import numpy as np
    return np.random.default_rng(seed).integers(0, 50257, n, dtype=np.int64).astype(np.uint16)


def child_train(a):
    import torch, torch.nn.functional as F
    from itertools import islice
    from lmlab.data import random_batches
    from lmlab.model import LanguageModel, ModelConfig
    from lmlab.callbacks import Callback
    from lmlab.train import TrainConfig, Trainer, autocast_for, make_optimizer, resolve_device
    torch.manual_seed(0)
    device = str(resolve_device(a.device))
    train_ids, val_ids = tokens(2_000_000, 1), tokens(a.seq_len * 4 + 1, 2)
    rss0 = peak_mb(device)
    n_steps = a.warmup + a.steps
    mcfg = ModelConfig(max_seq_len=a.seq_len, chunked_loss=a.mode != "baseline")
    tcfg = TrainConfig(epochs=None, max_steps=n_steps, batch_size=a.batch_size, device=a.device, seed=0,
                       compile=a.compile and a.mode != "lmlab-graphs",
                       cuda_graphs=a.mode == "lmlab-graphs")
    times, losses = [], []
    if a.mode != "baseline":
        class Clock(Callback):
            def before_fit(self, t): sync(device); self.t0 = time.perf_counter()
            def after_step(self, t):
                losses.append(t.last_loss); sync(device); now = time.perf_counter(); times.append(now - self.t0); self.t0 = now
        with tempfile.TemporaryDirectory() as rd:
            Trainer(Path(rd) / "run", mcfg, train_cfg=tcfg, callbacks=[Clock()], progress=False,
                    corpus=dict(train=train_ids, validation=val_ids)).fit()
    else:  # the plain way: full logits, F.cross_entropy, a bare loop
        model = LanguageModel.from_config(mcfg).to(device)
        opt = make_optimizer(model, tcfg)
        step_model = torch.compile(model) if a.compile else model
        for x, y in islice(random_batches(train_ids, a.seq_len, a.batch_size, seed=0), n_steps):
            t0 = time.perf_counter()
            x, y = x.to(device), y.to(device)
            with autocast_for(torch.device(device), True):
                logits = step_model(x)
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.max_norm)
            opt.step(); opt.zero_grad(set_to_none=True)
            losses.append(loss.item()); sync(device); times.append(time.perf_counter() - t0)
    timed = times[a.warmup:]
    med = statistics.median(timed)
    print(json.dumps(dict(step_s=med, tokens_per_s=a.batch_size * a.seq_len / med, peak_mb=peak_mb(device), start_mb=rss0,
                          losses=losses, device=device)))


def child_eval(a):
    import torch, torch.nn.functional as F
    from lmlab.data import TokenWindows
    from lmlab.model import LanguageModel, ModelConfig
    from lmlab.train import autocast_for, evaluate, resolve_device
    device = str(resolve_device(a.device))
    torch.manual_seed(0)
    val = tokens(a.val_tokens, 3)
    val = val[:(len(val) - 1) // a.seq_len * a.seq_len + 1]  # whole windows only: both ways score exactly the same tokens
    rss0 = peak_mb(device)
    model = LanguageModel.from_config(ModelConfig(max_seq_len=a.seq_len, dropout=0.0)).to(device).eval()
    def plain_nll(val):  # full logits, batch 32, windows only
        w, nll = TokenWindows(val, a.seq_len), 0.0
        with torch.no_grad():
            for s in range(0, len(w), 32):
                x, y = w.__getitems__(list(range(s, min(s + 32, len(w)))))
                with autocast_for(torch.device(device), True): logits = model(x.to(device))
                nll += F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.to(device).reshape(-1), reduction="sum").item()
        return nll
    run = (lambda v: evaluate(model, v, a.seq_len, batch_size=32)["nll"]) if a.mode == "lmlab" else plain_nll
    run(val[:32 * a.seq_len + 1])  # warm-up on one batch: a validation pass during training runs in a warm process
    sync(device); t0 = time.perf_counter()
    scored = len(val) - 1
    nll = run(val)
    sync(device)
    print(json.dumps(dict(seconds=time.perf_counter() - t0, peak_mb=peak_mb(device), start_mb=rss0, nll=nll, tokens=scored)))


def commit():
    "The code the figures came from: the git commit, marked '+changes' when the tree differs from it ($BENCH_COMMIT if set)."
    if os.environ.get("BENCH_COMMIT"): return os.environ["BENCH_COMMIT"]  # a copied tree whose history is elsewhere
    git = lambda *c: subprocess.run(["git", *c], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--", "lmlab", "bench/*.py")  # a results file does not count
    return (head + ("+changes" if changed else "")) if head else "unknown"


def matmul_peak(device):
    "Measured peak matmul rate (FLOP/s): float32 on the CPU, bf16 on CUDA."
    import torch
    n, dtype = (2048, torch.float32) if device == "cpu" else (8192, torch.bfloat16)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3): a @ b
    sync(device); t0 = time.perf_counter(); reps = 10
    for _ in range(reps): a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


@contextlib.contextmanager
def busy_core(on: bool):
    "Another process spinning on one core for the duration (nothing when `on` is false)."
    if not on: yield; return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try: time.sleep(0.5); yield
    finally: hog.kill(); hog.wait()


def spawn(kind, mode, a):
    args = [sys.executable, __file__, "--child", kind, "--mode", mode, "--device", a.device, "--batch-size", str(a.batch_size),
            "--seq-len", str(a.seq_len), "--steps", str(a.steps), "--warmup", str(a.warmup), "--val-tokens", str(a.val_tokens)]
    if a.compile: args.append("--compile")
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode: sys.exit(f"{kind}/{mode} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--val-tokens", type=int, default=243_000)  # about WikiText-2's validation split
    ap.add_argument("--epoch-tokens", type=float, default=120e6)  # about WikiText-103's training split in GPT-2 tokens
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cuda-graphs", action="store_true", help="also time lmlab with each step replayed as a CUDA graph")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each variant, alternating; the best is reported")
    ap.add_argument("--child", choices=["train", "eval"])
    ap.add_argument("--mode", choices=["baseline", "lmlab", "lmlab-graphs"])
    a = ap.parse_args()
    if a.child: return (child_train if a.child == "train" else child_eval)(a)

    import torch
    from lmlab.model import ModelConfig, train_flops_per_token
    device = a.device if a.device != "cuda" else "cuda"
    scenarios = {"idle": False, "load": True} if device == "cpu" else {"idle": False}
    res = {}
    for scenario, load in scenarios.items():
        # alternate the variants and keep each one's best run: a shared machine's interference only ever slows a run down
        with busy_core(load):
            runs = [(spawn("train", "baseline", a), spawn("train", "lmlab", a)) for _ in range(a.repeats)]
            graphed = [spawn("train", "lmlab-graphs", a) for _ in range(a.repeats)] if a.cuda_graphs and not load else []
            evals = [(spawn("eval", "baseline", a), spawn("eval", "lmlab", a)) for _ in range(a.repeats)]
        res[scenario] = dict(baseline=min((b for b, _ in runs), key=lambda r: r["step_s"]), lmlab=min((l for _, l in runs), key=lambda r: r["step_s"]),
                             eval_baseline=min((b for b, _ in evals), key=lambda r: r["seconds"]),
                             eval_lmlab=min((l for _, l in evals), key=lambda r: r["seconds"]),
                             graphs=min(graphed, key=lambda r: r["step_s"]) if graphed else None)
    base, lm, ebase, elm = (res["idle"][k] for k in ("baseline", "lmlab", "eval_baseline", "eval_lmlab"))
    val_diff = abs(elm["nll"] - ebase["nll"]) / abs(ebase["nll"])
    peak = matmul_peak(device)
    fpt = train_flops_per_token(ModelConfig(max_seq_len=a.seq_len), a.seq_len)["with_attention"]
    diff = max(abs(x - y) / abs(y) for x, y in zip(lm["losses"], base["losses"]))
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    mem = "peak GPU memory allocated (MB)" if device.startswith("cuda") else "peak RSS (MB)"
    rows = [
        ("median step time (s)", f"{base['step_s']:.3f}", f"{lm['step_s']:.3f}", f"{lm['step_s'] / base['step_s']:.2f}"),
        ("tokens per second", f"{base['tokens_per_s']:,.0f}", f"{lm['tokens_per_s']:,.0f}", f"{lm['tokens_per_s'] / base['tokens_per_s']:.2f}"),
        (mem, f"{base['peak_mb']:,.0f}", f"{lm['peak_mb']:,.0f}", f"{lm['peak_mb'] / base['peak_mb']:.2f}"),
        (mem.replace("(MB)", "above the process's start (MB)"), f"{base['peak_mb'] - base['start_mb']:,.0f}", f"{lm['peak_mb'] - lm['start_mb']:,.0f}",
         f"{(lm['peak_mb'] - lm['start_mb']) / (base['peak_mb'] - base['start_mb']):.2f}"),
        ("achieved FLOP/s (with-attention count)", f"{fpt * base['tokens_per_s']:.3g}", f"{fpt * lm['tokens_per_s']:.3g}", ""),
        ("... share of measured matmul peak", f"{fpt * base['tokens_per_s'] / peak:.1%}", f"{fpt * lm['tokens_per_s'] / peak:.1%}", ""),
        (f"time for {a.epoch_tokens / 1e6:.0f}M tokens (one WikiText-103 epoch)", f"{a.epoch_tokens / base['tokens_per_s'] / 60:,.1f} min",
         f"{a.epoch_tokens / lm['tokens_per_s'] / 60:,.1f} min", ""),
        (f"validation pass over {elm['tokens']:,} tokens (s)", f"{ebase['seconds']:.2f}", f"{elm['seconds']:.2f}", f"{elm['seconds'] / ebase['seconds']:.2f}"),
        (f"validation pass: {mem.replace(' (MB)', '')} above start (MB)", f"{ebase['peak_mb'] - ebase['start_mb']:,.0f}", f"{elm['peak_mb'] - elm['start_mb']:,.0f}", ""),
        ("largest relative difference of the per-step losses", "", f"{diff:.1e}", ""),
        ("relative difference of the validation loss", "", f"{val_diff:.1e}", ""),
    ]
    gr = res["idle"]["graphs"]
    if gr:
        graph_diff = max(abs(x - y) / abs(y) for x, y in zip(gr["losses"], lm["losses"]))
        rows += [
            ("lmlab, each step a CUDA graph: tokens per second", "", f"{gr['tokens_per_s']:,.0f}",
             f"{gr['tokens_per_s'] / base['tokens_per_s']:.2f}"),
            ("... against lmlab without graphs", "", f"{gr['tokens_per_s'] / lm['tokens_per_s']:.2f}x", ""),
            ("... share of measured matmul peak", "", f"{fpt * gr['tokens_per_s'] / peak:.1%}", ""),
            ("... largest relative difference of its per-step losses from lmlab's", "", f"{graph_diff:.1e}", ""),
        ]
    if "load" in res:
        L = res["load"]
        rows += [
            ("under load: tokens per second", f"{L['baseline']['tokens_per_s']:,.0f}", f"{L['lmlab']['tokens_per_s']:,.0f}",
             f"{L['lmlab']['tokens_per_s'] / L['baseline']['tokens_per_s']:.2f}"),
            ("under load: share of its own idle speed", f"{L['baseline']['tokens_per_s'] / base['tokens_per_s']:.2f}",
             f"{L['lmlab']['tokens_per_s'] / lm['tokens_per_s']:.2f}", ""),
            ("under load: validation pass (s)", f"{L['eval_baseline']['seconds']:.2f}", f"{L['eval_lmlab']['seconds']:.2f}",
             f"{L['eval_lmlab']['seconds'] / L['eval_baseline']['seconds']:.2f}"),
        ]
    print(f"\nLab log model (869,153 parameters), batch {a.batch_size} x {a.seq_len}, {a.steps} timed steps after {a.warmup} warm-up "
          f"(best of {a.repeats} runs each; 'under load': another process keeps one core busy), "
          f"on {name}; measured matmul peak {peak / 1e9:,.0f} GFLOP/s{'; torch.compile' if a.compile else ''}\n")
    print("| measure | baseline (full logits) | lmlab | lmlab / baseline |\n|---|---:|---:|---:|")
    for r in rows: print("| " + " | ".join(r) + " |")
    out = HERE / "results" / (f"train_step-{'cuda' if device.startswith('cuda') else 'cpu'}{'-compile' if a.compile else ''}"
                              f"{'-graphs' if a.cuda_graphs else ''}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(dict(device=name, commit=commit(), args=vars(a), matmul_peak=peak, flops_per_token=fpt, baseline=base, lmlab=lm,
                                   eval_baseline=ebase, eval_lmlab=elm, under_load=res.get("load"), max_rel_loss_diff=diff,
                                   val_rel_loss_diff=val_diff, table=rows), indent=1))
    print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
