"`lmlab-train` as a person types it: resume from the run's own record, one-line errors, Ctrl-C, readable files."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import BIN, run
from test_train_processes import ENV, TINY, metrics, train_cmd


def one_line_error(res, *needles):
    "The command failed with exactly one line on stderr, `lmlab-train: error: ...`, holding every needle, and no traceback."
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode != 0, res.stdout
    assert len(lines) == 1 and lines[0].startswith("lmlab-train: error: "), res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]


def test_resume_needs_only_the_run_dir(tmp_path):
    cache, rd = tmp_path / "cache", tmp_path / "r"
    run(train_cmd(rd, cache, "--max-steps", "6", "--batch-size", "4", "--eval-every", "3"), env=ENV)
    # extend the finished run's budget explicitly: the only change --resume accepts
    res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume", "--extend", "--max-steps", "9"],
              env={**ENV, "HF_HUB_OFFLINE": "1"})
    assert "resumed from step 6 of 9" in res.stdout
    assert [r["step"] for r in metrics(rd)] == [3, 6, 9]
    assert json.loads((rd / "config.json").read_text())["train"]["max_steps"] == 9


def test_resume_refuses_changed_options_naming_them(tmp_path):
    cache, rd = tmp_path / "cache", tmp_path / "r"
    run(train_cmd(rd, cache, "--max-steps", "2", "--batch-size", "4"), env=ENV)
    res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume", "--batch-size", "8", "--lr", "0.1"], env=ENV, check=False)
    one_line_error(res, "batch_size: recorded 4, given 8", "lr: recorded 0.003, given 0.1")
    res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume", "--max-steps", "5"], env=ENV, check=False)
    one_line_error(res, "max_steps: recorded 2, given 5", "--extend")


def test_resume_on_a_directory_without_a_run_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for rd in (tmp_path / "empty", tmp_path / "mistyped"):
        res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume"], env=ENV, check=False)
        one_line_error(res, "no run to resume", str(rd))
    assert not (tmp_path / "mistyped").exists()


def test_missing_data_and_devices_are_one_line_errors(tmp_path):
    res = run([BIN / "lmlab-train", "--run-dir", tmp_path / "a", "--dataset", "wikitext-2", "--data-dir", tmp_path / "nowhere"],
              env=ENV, check=False)
    one_line_error(res, str(tmp_path / "nowhere"), "does not exist")
    res = run(train_cmd(tmp_path / "b", tmp_path / "cache", "--device", "cuda:7"), env=ENV, check=False)
    one_line_error(res, "'cuda:7'", "--device cpu")
    res = run(train_cmd(tmp_path / "c", tmp_path / "cache", "--device", "cuda:7", "--debug"), env=ENV, check=False)
    assert res.returncode != 0 and "Traceback" in res.stderr  # --debug shows where it came from


def test_damaged_checkpoints_are_named_with_the_way_out(tmp_path):
    cache, rd = tmp_path / "cache", tmp_path / "r"
    run(train_cmd(rd, cache, "--epochs", "2", "--batch-size", "4"), env=ENV)
    good = (rd / "last.pt").read_bytes()
    for name, damage in (("truncated", good[: len(good) // 2]), ("empty", b""), ("random bytes", os.urandom(len(good)))):
        (rd / "last.pt").write_bytes(damage)
        res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume", "--extend", "--epochs", "3"], env=ENV, check=False)
        line = one_line_error(res, str(rd / "last.pt"), "mha_model_best.pt")
        assert "pickled code" not in line, (name, line)
        assert ("empty" in line) if name == "empty" else ("truncated or corrupt" in line), (name, line)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1], ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_saves_the_step_and_resume_finishes_the_same(tmp_path, sig):
    "Ctrl-C, and what SLURM, Kubernetes and `timeout` send: mid-epoch, between evaluations, the step is saved."
    cache = tmp_path / "cache"
    args = ["--epochs", "3", "--batch-size", "4", "--dropout", "0.1", "--seed", "2"]
    run(train_cmd(tmp_path / "whole", cache, *args), env=ENV)
    victim = subprocess.Popen(train_cmd(tmp_path / "stopped", cache, *args), env={**os.environ, **ENV},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and victim.poll() is None:
        if (tmp_path / "stopped/metrics.jsonl").exists() and metrics(tmp_path / "stopped"): break  # partway through epoch 2
        time.sleep(0.01)
    victim.send_signal(sig)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 128 + sig, (out, err)  # 130, 143, 138: what a shell reports, for a job script to test
    line = [l for l in err.splitlines() if l.strip()]
    assert len(line) == 1 and "interrupted at step" in line[0] and f"lmlab-train --run-dir {tmp_path / 'stopped'} --resume" in line[0]
    assert (signal.Signals(sig).name in line[0]) == (sig != signal.SIGINT), line[0]
    step = int(line[0].split("interrupted at step ")[1].split()[0].replace(",", ""))
    from lmlab.train import load_checkpoint
    assert load_checkpoint(tmp_path / "stopped/last.pt")["step"] == step > metrics(tmp_path / "stopped")[-1]["step"]
    assert not (tmp_path / "stopped/summary.json").exists()
    run([BIN / "lmlab-train", "--run-dir", tmp_path / "stopped", "--resume"], env=ENV)
    assert metrics(tmp_path / "stopped") == metrics(tmp_path / "whole")


def test_a_full_disk_while_saving_is_one_line_and_loses_nothing(tmp_path):
    "A run on a 16 MB filesystem: its best checkpoint fits, its last does not. One line; the best stays whole; resume finishes."
    disk, cache = tmp_path / "disk", tmp_path / "cache"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk]).returncode != 0:
        pytest.skip("needs a small filesystem: root, and mount -t tmpfs")
    try:
        rd, args = disk / "r", ["--epochs", "2", "--batch-size", "4"]
        run(train_cmd(tmp_path / "whole", cache, *args), env=ENV)
        res = run(train_cmd(rd, cache, *args), env=ENV, check=False)
        line = one_line_error(res, f"could not write {str(rd / 'last.pt')!r}: no space left on its disk", "it needs about",
                              "MB free there", "Nothing saved before is lost", f"lmlab-train --run-dir {rd} --resume")
        assert "enforce fail" not in line and "unexpected pos" not in line
        assert sorted(p.name for p in rd.iterdir()) == ["config.json", "metrics.jsonl", "mha_model_best.pt"]  # no temporary
        from lmlab.train import load_checkpoint
        assert load_checkpoint(rd / "mha_model_best.pt")["step"] == metrics(rd)[-1]["step"]  # whole, and loads
        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)  # room made
        res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume"], env=ENV)
        assert "from mha_model_best.pt: last.pt was never written" in res.stdout
        assert (rd / "summary.json").exists() and metrics(rd) == metrics(tmp_path / "whole")
    finally: subprocess.run(["umount", "-l", disk])


def test_files_keep_the_users_umask(tmp_path):
    rd = tmp_path / "r"
    old = os.umask(0o022)
    try: run(train_cmd(rd, tmp_path / "cache", "--max-steps", "2", "--batch-size", "4"), env=ENV)
    finally: os.umask(old)
    for name in ("config.json", "metrics.jsonl", "summary.json", "last.pt", "mha_model_best.pt"):
        assert (rd / name).stat().st_mode & 0o777 == 0o644, (name, oct((rd / name).stat().st_mode))


def test_the_data_source_is_recorded_and_checked_on_resume(tmp_path):
    from lmlab.data import make_wikitext_like
    here, there = make_wikitext_like(tmp_path / "here"), make_wikitext_like(tmp_path / "there", seed=1)
    rd, model = tmp_path / "r", ["--max-seq-len", "32", "--d-model", "16", "--num-heads", "2", "--d-ff", "32", "--num-layers", "1"]
    local = {**ENV, "LMLAB_WIKITEXT_DIR": str(here.parent), "HF_HUB_OFFLINE": "1"}
    run([BIN / "lmlab-train", "--run-dir", rd, "--cache-dir", tmp_path / "cache", *model, "--max-steps", "2", "--batch-size", "4"], env=local)
    source = json.loads((rd / "config.json").read_text())["sources"]["train"]
    assert source["kind"] == "local" and source["dir"] == str(here.resolve())
    assert [f["name"] for f in source["files"]] == ["train-00000-of-00001.parquet"] and len(source["files"][0]["sha256"]) == 64
    elsewhere = {**local, "LMLAB_WIKITEXT_DIR": str(there.parent)}
    res = run([BIN / "lmlab-train", "--run-dir", rd, "--resume", "--extend", "--max-steps", "4"], env=elsewhere, check=False)
    one_line_error(res, "its train data came from " + str(here.resolve()), "this time from " + str(there.resolve()))


def _fresh_shell(**env):
    "The environment of a new terminal: no LMLAB_WIKITEXT_DIR, no offline switches; the hub unreachable (a closed local port)."
    drop = ("LMLAB_WIKITEXT_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **ENV, "HF_ENDPOINT": "http://127.0.0.1:9", **env}


def test_resume_in_a_fresh_shell_reads_the_recorded_folder(tmp_path):
    from lmlab.data import make_wikitext_like
    here = make_wikitext_like(tmp_path / "data")
    rd, model = tmp_path / "r", ["--max-seq-len", "32", "--d-model", "16", "--num-heads", "2", "--d-ff", "32", "--num-layers", "1"]
    run([BIN / "lmlab-train", "--run-dir", rd, "--cache-dir", tmp_path / "cache", *model, "--max-steps", "2", "--batch-size", "4"],
        env={**ENV, "LMLAB_WIKITEXT_DIR": str(here.parent)})
    resume = [BIN / "lmlab-train", "--run-dir", rd, "--resume", "--extend", "--max-steps", "4"]
    res = subprocess.run(resume, env=_fresh_shell(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "resumed from step 2 of 4" in res.stdout and [r["step"] for r in metrics(rd)] == [2, 4]
    # an edited file, then a moved folder: one line naming the folder and the way out
    more = [BIN / "lmlab-train", "--run-dir", rd, "--resume", "--extend", "--max-steps", "6"]
    train_file = here / "train-00000-of-00001.parquet"
    original = train_file.read_bytes()
    train_file.write_bytes(original + b"\0")
    res = subprocess.run(more, env=_fresh_shell(), capture_output=True, text=True, timeout=300)
    one_line_error(res, str(here.resolve()), "has changed since", "LMLAB_WIKITEXT_DIR")
    train_file.write_bytes(original)
    here.rename(tmp_path / "elsewhere")
    res = subprocess.run(more, env=_fresh_shell(), capture_output=True, text=True, timeout=300)
    one_line_error(res, str(here.resolve()), "is not there any more", "LMLAB_WIKITEXT_DIR")


EVALUATE_RUN = """
import sys
from lmlab.lab import evaluate_run
try: r = evaluate_run(sys.argv[1], split="test")
except (ValueError, OSError) as e: sys.exit(f"evaluate_run: {e}")
print("test loss", r["loss"], "words", r["words"])
"""


def test_every_reader_of_a_runs_data_finds_the_recorded_folder_in_a_fresh_shell(tmp_path):
    "evaluate_run and lmlab-eval read the run's text as resume does: from its recorded folder, each file checked."
    from lmlab.data import make_wikitext_like
    here = make_wikitext_like(tmp_path / "data")
    rd, model = tmp_path / "r", ["--max-seq-len", "32", "--d-model", "16", "--num-heads", "2", "--d-ff", "32", "--num-layers", "1"]
    run([BIN / "lmlab-train", "--run-dir", rd, "--cache-dir", tmp_path / "cache", *model, "--max-steps", "2", "--batch-size", "4"],
        env={**ENV, "LMLAB_WIKITEXT_DIR": str(here.parent)})
    readers = {"evaluate_run": [sys.executable, "-c", EVALUATE_RUN, rd],
               "lmlab-eval": [BIN / "lmlab-eval", rd, "--tasks", "lmlab_wikitext,lmlab_wikitext_stock", "--limit", "1"]}
    for name, cmd in readers.items():
        res = subprocess.run(cmd, env=_fresh_shell(), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, (name, res.stderr)
        assert ("test loss" if name == "evaluate_run" else "| lmlab_wikitext_stock |") in res.stdout, (name, res.stdout)
    train_file = here / "train-00000-of-00001.parquet"
    original = train_file.read_bytes()
    def each_says(needle):  # one line naming the folder and the way out
        for name, cmd in readers.items():
            res = subprocess.run(cmd, env=_fresh_shell(), capture_output=True, text=True, timeout=300)
            lines = [l for l in res.stderr.splitlines() if l.strip()]
            assert res.returncode != 0 and len(lines) == 1 and "Traceback" not in res.stderr, (name, res.stderr)
            for n in (str(here.resolve()), needle, "LMLAB_WIKITEXT_DIR"): assert n in lines[0], (name, n, lines[0])
    train_file.write_bytes(original + b"\0")
    each_says("has changed since")
    train_file.write_bytes(original)
    here.rename(tmp_path / "elsewhere")
    each_says("is not there any more")


def test_an_unreachable_hub_fails_at_once_in_one_line(tmp_path):
    t0 = time.perf_counter()
    res = subprocess.run([BIN / "lmlab-train", "--run-dir", tmp_path / "r", "--cache-dir", tmp_path / "cache", "--dataset", "wikitext-2",
                          "--max-steps", "1"], env=_fresh_shell(), capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - t0  # the command's own start-up (torch, tokenizer) included; datasets' retries took ~25 s
    one_line_error(res, "cannot reach the Hugging Face hub", "LMLAB_WIKITEXT_DIR")
    assert seconds < 15, seconds


def test_report_to_tensorboard_and_wandb_read_back_as_metrics_and_resume_adds_no_step_twice(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    import numpy as np
    cache, rd = tmp_path / "cache", tmp_path / "r"
    trackers = ["--report-to", "tensorboard", "wandb"]
    run(train_cmd(rd, cache, "--max-steps", "4", "--batch-size", "4", "--eval-every", "2", *trackers), env=ENV)
    run([BIN / "lmlab-train", "--run-dir", rd, "--resume", "--extend", "--max-steps", "6", *trackers], env=ENV)
    acc = EventAccumulator(str(rd / "tensorboard")); acc.Reload()
    rows = metrics(rd, drop=())
    for tag, key in (("loss/train", "train_loss"), ("loss/validation", "val_loss"), ("learning_rate", "lr"),
                     ("tokens_per_s", "tokens_per_s"), ("grad_norm", "grad_norm"), ("perplexity/validation", "val_ppl")):
        assert [(e.step, e.value) for e in acc.Scalars(tag)] == [(r["step"], float(np.float32(r[key]))) for r in rows], tag
    assert [r["step"] for r in rows] == [2, 4, 6]
    # W&B offline, beside it: one W&B run in two parts (the train notebook reads its records back)
    state = json.loads((rd / "wandb" / "lmlab-run.json").read_text())
    assert state["step"] == 6 and len(list(rd.glob(f"wandb/offline-run-*-{state['id']}/run-{state['id']}.wandb"))) == 2
    res = run(train_cmd(tmp_path / "x", cache, "--report-to", "mlflow"), env=ENV, check=False)
    one_line_error(res, "unknown tracker 'mlflow' in report_to: use tensorboard, wandb")
