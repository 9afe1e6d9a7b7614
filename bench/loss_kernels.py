#!/usr/bin/env python
"""The output layer's loss on its own: lmlab's loss against other ways of computing it, on whatever device is at hand.

    python bench/loss_kernels.py                    # CPU: the plain full-logits loss vs lmlab's
    python bench/loss_kernels.py --device cuda      # a GPU: also the fused kernels of liger-kernel and cut-cross-entropy,
                                                    # where those packages are installed

Each variant computes the mean cross-entropy of `h @ W.T + b` (the lab log's d_model 16, GPT-2's 50,257 tokens,
Experiment 2's batch of 32 x 512 rows, a few ignored targets) and its gradients with respect to h, W and b. Reported:
median time of the forward and backward together, of the forward alone (a validation pass), peak memory above the
inputs, and the largest relative error of the loss and of each gradient against a float64 reference. Saved to
bench/results/loss_kernels-<device>.json.
"""
import argparse, json, platform, statistics, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def plain(h, w, b, t, amp):
    "Full logits and F.cross_entropy, as nanoGPT does (bf16 logits under autocast on CUDA)."
    with torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = F.linear(h, w, b)
    return F.cross_entropy(logits.float(), t)


def lmlab_loss(h, w, b, t, amp):
    "What the model uses: `chunked_cross_entropy`, which on CUDA runs the fused kernels of lmlab.fused_loss."
    from lmlab.kernels import chunked_cross_entropy
    with torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=amp):
        return chunked_cross_entropy(h, w, b, t)


def chunked(h, w, b, t, amp):
    "lmlab's chunked computation in PyTorch operations (the CPU path; on a GPU, what runs where Triton is missing)."
    from lmlab.model import _ChunkedCrossEntropy
    with torch.autocast(h.device.type, dtype=torch.bfloat16, enabled=amp):
        return _ChunkedCrossEntropy.apply(h, w, b, t, 32 if h.device.type == "cpu" else 16384, "mean", -100)


def liger(h, w, b, t, amp):
    "liger-kernel's fused linear cross-entropy: float32 inputs, the whole batch as one chunk of logits."
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    return liger_fused_linear_cross_entropy(h, w, t, bias=b, chunk_mem_const=1 << 16)


def cce(h, w, b, t, amp):
    "Apple's cut-cross-entropy: never holds the logits; bf16 inputs (its requirement); the bias rides in an extra column."
    from cut_cross_entropy import linear_cross_entropy
    N, d = h.shape
    pad = (-(d + 1)) % 16
    e = torch.cat([h, h.new_ones(N, 1), h.new_zeros(N, pad)], 1).to(torch.bfloat16)
    c = torch.cat([w, b[:, None], w.new_zeros(w.shape[0], pad)], 1).to(torch.bfloat16)
    return linear_cross_entropy(e, c, t, filter_eps=None)


class _Compiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, b, t):
        need_grad = any(ctx.needs_input_grad[:3])
        out = _compiled_rows(need_grad)(h, w, b, t)
        if need_grad: ctx.save_for_backward(*out[1:])
        return out[0].sum() / (t != -100).sum().clamp(min=1)
    @staticmethod
    def backward(ctx, g):
        gh, gw, gb = ctx.saved_tensors
        return gh * g, gw * g, gb * g, None

_CACHE = {}
def _compiled_rows(need_grad: bool):
    if need_grad not in _CACHE:
        def rows(h, w, b, t):
            logits = torch.addmm(b, h, w.t())
            lse = torch.logsumexp(logits, 1, keepdim=True)
            valid = (t != -100)
            ts = t.clamp(min=0)
            row_loss = (lse - logits.gather(1, ts[:, None])).squeeze(1) * valid
            if not need_grad: return (row_loss,)
            row_w = (valid / valid.sum().clamp(min=1)).to(h.dtype)[:, None]
            hit = torch.arange(logits.shape[1], device=h.device)[None] == ts[:, None]
            p = (torch.exp(logits - lse) - hit.to(logits.dtype)) * row_w
            return row_loss, p @ w, p.t() @ h, p.sum(0)
        _CACHE[need_grad] = torch.compile(rows, dynamic=False)
    return _CACHE[need_grad]


def compiled(h, w, b, t, amp):
    "The same algebra as one torch.compile'd function: Inductor fuses the element-wise passes over the logits."
    with torch.autocast(h.device.type, enabled=False):
        return _Compiled.apply(h.float(), w.float(), b.float(), t)


VARIANTS = dict(plain=plain, lmlab=lmlab_loss, chunked=chunked, compiled=compiled, liger=liger, cce=cce)


def measure(fn, h, w, b, t, amp, reps, grad=True):
    device = h.device
    hs, ws, bs = (x.detach().clone().requires_grad_(grad) for x in (h, w, b))
    def once():
        for x in (hs, ws, bs): x.grad = None
        with torch.set_grad_enabled(grad):
            loss = fn(hs, ws, bs, t, amp)
            if grad: loss.backward()
        return loss
    loss = once(); sync(device)  # warm-up: compilation, autotuning, allocator
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    times = []
    for _ in range(reps):
        sync(device); t0 = time.perf_counter(); once(); sync(device); times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else float("nan")
    grads = (hs.grad, ws.grad, bs.grad) if grad else None
    return statistics.median(times), peak, loss.detach(), grads


def model_steps(name, device, compile_mode, batch_size=32, seq_len=512, steps=30, warmup=10):
    "Tokens per second of whole training steps of the lab log's model, its hidden states compiled, with this loss."
    from lmlab.model import LanguageModel, ModelConfig
    from lmlab.train import TrainConfig, make_optimizer
    torch.manual_seed(0)
    model = LanguageModel.from_config(ModelConfig(max_seq_len=seq_len)).to(device)
    opt = make_optimizer(model, TrainConfig())
    hidden = torch.compile(model.hidden, mode=compile_mode) if compile_mode else model.hidden
    data = torch.randint(0, 50257, (steps + warmup, batch_size, seq_len + 1), device=device)
    fn, losses = VARIANTS[name], []
    for i in range(steps + warmup):
        if i == warmup: sync(device); t0 = time.perf_counter()
        x, y = data[i, :, :-1], data[i, :, 1:]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            hid = hidden(x)
        loss = fn(hid.reshape(-1, hid.shape[-1]), model.wte.weight, model.lm_head_bias, y.reshape(-1), device.type == "cuda")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    sync(device)
    return batch_size * seq_len * steps / (time.perf_counter() - t0), torch.stack(losses).tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", type=int, default=32 * 512)
    ap.add_argument("--d-model", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--model-steps", nargs="*", default=[], help="compile modes ('none', 'default', 'reduce-overhead') "
                    "in which to time whole training steps with each variant")
    ap.add_argument("--step-variants", nargs="*", default=None, help="variants for --model-steps (default: all measured)")
    a = ap.parse_args()
    device = torch.device(a.device)
    amp = device.type == "cuda"
    if device.type == "cuda": torch.set_float32_matmul_precision("high")  # as the Trainer sets it
    g = torch.Generator(device="cpu").manual_seed(0)
    h = torch.randn(a.rows, a.d_model, generator=g).to(device)
    w = (torch.randn(a.vocab, a.d_model, generator=g) * 0.5).to(device)
    b = (torch.randn(a.vocab, generator=g) * 0.1).to(device)
    t = torch.randint(0, a.vocab, (a.rows,), generator=g).to(device)
    t[::97] = -100
    # float64 reference, on the device (the CPU would take minutes)
    h64, w64, b64 = (x.double().requires_grad_() for x in (h, w, b))
    ref = F.cross_entropy(torch.addmm(b64, h64, w64.t()), t)
    ref_grads = torch.autograd.grad(ref, (h64, w64, b64))
    ref = ref.item()
    del h64, w64, b64
    if device.type == "cuda": torch.cuda.empty_cache()
    rel = lambda x, r: float((x.double() - r).abs().max() / r.abs().max())
    rows = {}
    for name in a.variants:
        try:
            step_s, peak, loss, grads = measure(VARIANTS[name], h, w, b, t, amp, a.reps)
            fwd_s, fwd_peak, fwd_loss, _ = measure(VARIANTS[name], h, w, b, t, amp, a.reps, grad=False)
        except ImportError as e:
            print(f"{name}: skipped ({e})"); continue
        rows[name] = dict(step_ms=step_s * 1e3, forward_ms=fwd_s * 1e3, peak_mb=peak, forward_peak_mb=fwd_peak,
                          loss_rel_err=abs(float(loss) - ref) / abs(ref),
                          forward_loss_rel_err=abs(float(fwd_loss) - ref) / abs(ref),
                          **{f"grad_{k}_rel_err": rel(gr, r) for k, gr, r in zip("hwb", grads, ref_grads)})
        print(name, json.dumps(rows[name]), flush=True)
    steps = {}
    for mode in a.model_steps:
        for name in (a.step_variants or rows):
            try: tps, losses = model_steps(name, device, None if mode == "none" else mode)
            except Exception as e: print(f"model steps {name}/{mode}: failed ({type(e).__name__}: {e})"); continue
            steps[f"{name}/{mode}"] = dict(tokens_per_s=tps, losses=losses)
            print(f"model steps {name}/{mode}: {tps:,.0f} tokens/s; losses {losses[0]:.4f} .. {losses[-1]:.4f}", flush=True)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.processor() or platform.machine()}"
    print(f"\n{a.rows:,} rows x d_model {a.d_model} x {a.vocab:,} tokens on {name}; median of {a.reps}\n")
    print("| variant | forward + backward (ms) | forward only (ms) | peak memory (MB) | loss error | grad h / W / b error |")
    print("|---|---:|---:|---:|---:|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['step_ms']:.2f} | {r['forward_ms']:.2f} | {r['peak_mb']:,.0f} | {r['loss_rel_err']:.1e} | "
              f"{r['grad_h_rel_err']:.1e} / {r['grad_w_rel_err']:.1e} / {r['grad_b_rel_err']:.1e} |")
    out = HERE / "results" / f"loss_kernels-{device.type}.json"
    from train_step import commit
    out.write_text(json.dumps(dict(device=name, commit=commit(), args=vars(a), torch=torch.__version__, results=rows, model_steps=steps), indent=1))


if __name__ == "__main__":
    main()
