"""CUDA paths (bf16 autocast, torch.compile, fused AdamW, the fused loss kernels): run where a GPU is present, skipped elsewhere.
The fused loss kernels are also checked on a CPU through Triton's interpreter, where Triton is installed.
Each test is sized to finish well inside its pytest-timeout limit on a GPU machine that has just started (first CUDA
use, kernels compiled and tuned from nothing): `make gpu-check` runs them all within its budget."""
import importlib.util, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
pytestmark = pytest.mark.timeout(120)  # per test (pytest-timeout): a hang is a failure with a traceback, not a stall
ROOT = Path(__file__).resolve().parents[1]


def corpus(n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    return dict(train=rng.integers(0, 50257, n).astype(np.uint16), validation=rng.integers(0, 50257, 20_000).astype(np.uint16))


@needs_cuda
@pytest.mark.parametrize("mode", ["eager", "compile", "cuda_graphs"])
def test_cuda_training_checkpoints_and_resume(tmp_path, mode):
    from lmlab.model import ModelConfig
    from lmlab.runs import read_metrics
    from lmlab.train import Trainer, TrainConfig, load_checkpoint, load_model
    # compiled: one block, so that Inductor's first compilation fits well inside the test's limit
    mcfg = ModelConfig(max_seq_len=128, dropout=0.0, num_layers=1 if mode == "compile" else 2)
    cfg = TrainConfig(epochs=None, max_steps=60, batch_size=16, device="cuda", compile=mode == "compile",
                      cuda_graphs=mode == "cuda_graphs", eval_every=30, lr=1e-3)
    data = corpus()
    s = Trainer(tmp_path / "run", mcfg, train_cfg=cfg, callbacks=[], corpus=data).fit()
    rows = read_metrics(tmp_path / "run")
    assert s["steps"] == 60 and [r["step"] for r in rows] == [30, 60]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] < 11
    state = load_checkpoint(tmp_path / "run/last.pt")
    assert not any(k.startswith(("_orig_mod", "module.")) for k in state["model"])  # no compile/DDP prefixes on disk
    assert next(load_model(tmp_path / "run/mha_model_best.pt", "cuda").parameters()).is_cuda
    # resuming under a different training configuration is refused rather than silently mixed
    longer = TrainConfig(**{**cfg.to_dict(), "max_steps": 90})
    with pytest.raises(ValueError, match="train configuration differs"):
        Trainer(tmp_path / "run", mcfg, train_cfg=longer, callbacks=[], corpus=data).fit(resume=True)


@needs_cuda
def test_captured_steps_match_eager_steps_on_cuda():
    "A sweep-sized model's steps replayed as one CUDA graph each: the eager steps' losses, to float32 rounding of the lr."
    from lmlab.model import LanguageModel
    from lmlab.train import CapturedStep, TrainConfig, make_optimizer, train_step
    def run(captured: bool):
        torch.manual_seed(0)
        model = LanguageModel(max_seq_len=128, d_model=32, num_heads=2, d_ff=128, num_layers=1, dropout=0.0).cuda()
        opt, g = make_optimizer(model, TrainConfig(lr=1e-3)), torch.Generator().manual_seed(1)
        step = CapturedStep(model, opt, (16, 128)) if captured else None
        assert step is None or step.graph is not None  # it was captured, not run as it is
        losses = []
        for i in range(30):
            xy, lr = torch.randint(0, 50257, (16, 129), generator=g).cuda(), 1e-3 * (1 - i / 30)
            if step: loss, _ = step(xy[:, :-1], xy[:, 1:], lr)
            else:
                for group in opt.param_groups: group["lr"] = lr
                loss, _ = train_step(model, opt, xy[:, :-1], xy[:, 1:])
            losses.append(loss)
        return torch.stack(losses).tolist()
    eager, captured = run(False), run(True)
    assert captured[0] == eager[0]  # the same weights and kernels: the first loss is the same to the bit
    assert max(abs(a - b) / abs(b) for a, b in zip(captured, eager)) < 1e-4, (captured, eager)
    assert captured[-1] < captured[0]


@needs_cuda
def test_chunked_and_plain_loss_agree_on_cuda():
    from lmlab.kernels import chunked_cross_entropy
    torch.manual_seed(0)
    h = torch.randn(3000, 64, device="cuda", requires_grad=True)
    w = torch.randn(50257, 64, device="cuda", requires_grad=True)
    b = torch.zeros(50257, device="cuda", requires_grad=True)
    t = torch.randint(0, 50257, (3000,), device="cuda")
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        plain = torch.nn.functional.cross_entropy(h @ w.T + b, t)
        chunked = chunked_cross_entropy(h, w, b, t, chunk_rows=1024)
        gp, gc = torch.autograd.grad(plain, (h, w, b)), torch.autograd.grad(chunked, (h, w, b))
    finally: torch.set_float32_matmul_precision(before)
    assert torch.allclose(plain, chunked, rtol=1e-5)
    for a, e in zip(gc, gp): assert torch.allclose(a, e, rtol=1e-4, atol=1e-6)


def fused_loss_errors(device, shapes):
    "Largest relative error of the fused loss and its three gradients against float64 F.cross_entropy, per shape."
    from lmlab.fused_loss import fused_cross_entropy
    out = []
    for N, V, D, reduction in shapes:
        g = torch.Generator().manual_seed(N + V + D)
        h, w, b = torch.randn(N, D, generator=g), torch.randn(V, D, generator=g) * 0.5, torch.randn(V, generator=g) * 0.1
        t = torch.randint(0, V, (N,), generator=g); t[::7] = -100
        h64, w64, b64 = (x.double().requires_grad_() for x in (h, w, b))
        ref = F.cross_entropy(h64 @ w64.T + b64, t, reduction=reduction)
        ref_grads = torch.autograd.grad(ref * 3, (h64, w64, b64))  # a grad_output other than 1
        hd, wd, bd = (x.to(device).requires_grad_() for x in (h, w, b))
        loss = fused_cross_entropy(hd, wd, bd, t.to(device), reduction=reduction)
        grads = torch.autograd.grad(loss * 3, (hd, wd, bd))
        errs = [abs(loss.item() - ref.item()) / abs(ref.item())]
        errs += [float((a.cpu().double() - r).abs().max() / r.abs().max()) for a, r in zip(grads, ref_grads)]
        out.append(max(errs))
    return out


@needs_cuda
@pytest.mark.parametrize("precision, tol, shapes", [  # each new (vocabulary, width) tunes the tiles once: about 30 s
    ("highest", 1e-5, [(1000, 5000, 24, "sum"), (777, 5000, 24, "mean"), (300, 3001, 256, "mean")]),
    ("high", 1e-4, [(3000, 50257, 16, "mean")])])
def test_fused_loss_matches_float64_on_cuda(precision, tol, shapes):
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try: errs = fused_loss_errors("cuda", shapes)
    finally: torch.set_float32_matmul_precision(before)
    assert max(errs) < tol, errs


@needs_cuda
def test_model_uses_fused_loss_on_cuda():
    "The model's loss on CUDA comes from the fused kernels and equals the plain path's, in training and in evaluation."
    import lmlab.model as M
    from lmlab.train import evaluate
    assert M._fused_loss() is not None
    torch.manual_seed(0)
    model = M.LanguageModel(max_seq_len=64, dropout=0.0).cuda()
    plain = M.LanguageModel(max_seq_len=64, dropout=0.0, chunked_loss=False).cuda()
    plain.load_state_dict(model.state_dict())
    x = torch.randint(0, 50257, (4, 65), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16): a, b = model(x[:, :-1], x[:, 1:]), plain(x[:, :-1], x[:, 1:])
    assert abs(a.item() - b.item()) < 2e-3 * b.item()  # the plain path's logits are bf16 under autocast
    ga = torch.autograd.grad(a, list(model.parameters()))
    gb = torch.autograd.grad(b, list(plain.parameters()))
    for u, v in zip(ga, gb): assert torch.allclose(u.float(), v.float(), rtol=5e-2, atol=1e-4)
    tokens = np.random.default_rng(0).integers(0, 50257, 5000).astype(np.uint16)
    e1, e2 = evaluate(model, tokens, 64), evaluate(plain, tokens, 64)
    assert e1["tokens"] == e2["tokens"] and abs(e1["loss"] - e2["loss"]) < 2e-3 * e2["loss"]


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton (it comes with PyTorch's CUDA builds)")
def test_fused_loss_in_triton_interpreter():
    "The same kernels, run on a CPU by Triton's interpreter: small shapes, exact float32 products."
    code = ("import sys; sys.path.insert(0, 'tests'); import torch; torch.set_float32_matmul_precision('highest')\n"
            "from test_gpu import fused_loss_errors\n"
            "print(max(fused_loss_errors('cpu', [(100, 1000, 16, 'mean'), (70, 333, 24, 'sum'), (130, 500, 48, 'mean')])))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=110,
                         env={**os.environ, "TRITON_INTERPRET": "1"})
    if "only 0-dimensional arrays can be converted" in res.stderr:  # numpy 2.4 refuses what older interpreters do
        import numpy, triton
        pytest.skip(f"Triton {triton.__version__}'s interpreter does not run with numpy {numpy.__version__}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert float(res.stdout.strip().splitlines()[-1]) < 1e-5
