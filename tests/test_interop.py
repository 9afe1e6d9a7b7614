"Export, load and generate as a researcher types them: lmlab-export, LanguageModel.from_pretrained, lmlab-generate."
import json, subprocess, sys
from conftest import BIN, run
from test_train_processes import ENV, train_cmd


def test_export_load_generate_round_trip(tmp_path):
    rd, out = tmp_path / "r", tmp_path / "export"
    run(train_cmd(rd, tmp_path / "cache", "--max-steps", "4", "--batch-size", "4", "--eval-every", "2"), env=ENV)
    res = run([BIN / "lmlab-export", rd, out], env=ENV)
    assert f"wrote {out / 'model.safetensors'}" in res.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["tokens_seen"] == 4 * 4 * 32 and config["exported_from"]["checkpoint"] == "mha_model_best.pt"
    assert {"total", "kaplan"} <= set(config["params"]) and config["sources"]["train"]["kind"] == "local"
    check = f"""
import torch
from lmlab.model import LanguageModel
from lmlab.train import load_model
a, b = load_model({str(rd / 'mha_model_best.pt')!r}), LanguageModel.from_pretrained({str(out)!r})
assert a.state_dict().keys() == b.state_dict().keys()
assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
print("bitwise equal")
"""
    assert "bitwise equal" in run([sys.executable, "-c", check], env=ENV).stdout
    prompt = " The history of the city"
    from_run = run([BIN / "lmlab-generate", rd, "--prompt", prompt], env=ENV).stdout
    from_export = run([BIN / "lmlab-generate", out, "--prompt", prompt], env=ENV).stdout
    samples = run([sys.executable, "-c", f"from lmlab.lab import samples; from lmlab.train import load_model; "
                   f"print(samples(load_model({str(rd / 'mha_model_best.pt')!r}), [{prompt!r}])[{prompt!r}])"], env=ENV).stdout
    assert from_run == from_export == samples and from_run.startswith(prompt)


def test_a_mismatched_file_is_a_one_line_error(tmp_path):
    rd, out = tmp_path / "r", tmp_path / "export"
    run(train_cmd(rd, tmp_path / "cache", "--max-steps", "2", "--batch-size", "4"), env=ENV)
    run([BIN / "lmlab-export", rd, out], env=ENV)
    config = json.loads((out / "config.json").read_text())
    config["model"]["d_ff"] = 64  # a config.json from another model
    (out / "config.json").write_text(json.dumps(config))
    res = run([BIN / "lmlab-generate", out, "--prompt", "x"], env=ENV, check=False)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 1 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("lmlab-generate: error: ") and "does not match its config.json: tensor 'h.0.mlp.c_fc.weight'" in lines[0]
    res = run([BIN / "lmlab-export", tmp_path / "nowhere", out], env=ENV, check=False)
    assert res.returncode == 1 and "lmlab-export: error: no run in" in res.stderr and "Traceback" not in res.stderr
