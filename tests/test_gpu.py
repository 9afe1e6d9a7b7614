"CUDA paths of the trainer (bf16 autocast, torch.compile, fused AdamW): run where a GPU is present, skipped elsewhere."
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def corpus(n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    return dict(train=rng.integers(0, 50257, n).astype(np.uint16), validation=rng.integers(0, 50257, 20_000).astype(np.uint16))


@pytest.mark.parametrize("compile", [False, True])
def test_cuda_training_checkpoints_and_resume(tmp_path, compile):
    from lmlab.model import ModelConfig
    from lmlab.train import Trainer, TrainConfig, load_checkpoint, load_model, read_metrics
    mcfg = ModelConfig(max_seq_len=128, dropout=0.0)
    cfg = TrainConfig(epochs=None, max_steps=60, batch_size=16, device="cuda", compile=compile, eval_every=30, lr=1e-3)
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


def test_chunked_and_plain_loss_agree_on_cuda():
    from lmlab.model import chunked_cross_entropy
    torch.manual_seed(0)
    h = torch.randn(3000, 64, device="cuda", requires_grad=True)
    w = torch.randn(50257, 64, device="cuda", requires_grad=True)
    b = torch.zeros(50257, device="cuda", requires_grad=True)
    t = torch.randint(0, 50257, (3000,), device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    plain = torch.nn.functional.cross_entropy(h @ w.T + b, t)
    chunked = chunked_cross_entropy(h, w, b, t, chunk_rows=1024)
    gp, gc = torch.autograd.grad(plain, (h, w, b)), torch.autograd.grad(chunked, (h, w, b))
    assert torch.allclose(plain, chunked, rtol=1e-5)
    for a, e in zip(gc, gp): assert torch.allclose(a, e, rtol=1e-4, atol=1e-6)
