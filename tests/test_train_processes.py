"Training as separate processes: kill -9 and resume, DistributedDataParallel on 2 CPU processes."
import json, os, signal, subprocess, sys, time
from pathlib import Path
from conftest import BIN, run

TINY = ["--max-seq-len", "32", "--d-model", "16", "--num-heads", "2", "--d-ff", "32", "--num-layers", "1",
        "--dataset", "synthetic", "--synthetic-articles", "16", "--lr", "3e-3"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def metrics(run_dir, drop=("time_s", "tokens_per_s")):
    rows = [json.loads(l) for l in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def train_cmd(run_dir, cache, *extra):
    return [BIN / "lmlab-train", "--run-dir", run_dir, "--cache-dir", cache, *TINY, *extra]


def test_kill_9_and_resume_gives_the_same_metrics(tmp_path):
    cache = tmp_path / "cache"
    args = ["--epochs", "4", "--batch-size", "4", "--dropout", "0.1", "--checkpoint-every", "1", "--seed", "3"]
    run(train_cmd(tmp_path / "whole", cache, *args), env=ENV)
    # the same run, killed without warning once it has a checkpoint partway through its second epoch
    victim = subprocess.Popen(train_cmd(tmp_path / "killed", cache, *args), env={**os.environ, **ENV},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last, seen, deadline = tmp_path / "killed/last.pt", set(), time.time() + 300
    while time.time() < deadline and victim.poll() is None and len(seen) < 4:  # after the first epoch, 3 more step checkpoints
        if (tmp_path / "killed/metrics.jsonl").exists() and metrics(tmp_path / "killed") and last.exists():
            seen.add(last.stat().st_mtime_ns)
        time.sleep(0.01)
    assert victim.poll() is None, "the run finished before it could be killed: " + victim.stdout.read()[-2000:]
    victim.send_signal(signal.SIGKILL); victim.wait()
    assert not (tmp_path / "killed/summary.json").exists()
    run(train_cmd(tmp_path / "killed", cache, *args, "--resume"), env=ENV)
    assert metrics(tmp_path / "killed") == metrics(tmp_path / "whole")
    assert len(metrics(tmp_path / "whole")) == 4


def test_resume_with_a_different_configuration_is_refused(tmp_path):
    cache = tmp_path / "cache"
    run(train_cmd(tmp_path / "r", cache, "--epochs", "1", "--batch-size", "4"), env=ENV)
    res = run(train_cmd(tmp_path / "r", cache, "--epochs", "1", "--batch-size", "8", "--resume"), env=ENV, check=False)
    assert res.returncode != 0 and "batch_size: recorded 4, given 8" in res.stderr


LATE_RANK = """
import sys, time
from lmlab import train
barrier = train.Trainer._barrier
def late_barrier(self):
    barrier(self)
    if self.rank == 1: time.sleep(1)
train.Trainer._barrier = late_barrier
sys.exit(train.main())
"""


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    cache = tmp_path / "cache"
    args = ["--epochs", "2", "--batch-size", "8", "--dropout", "0", "--seed", "1", "--eval-batch-size", "4"]
    run(train_cmd(tmp_path / "single", cache, *args), env=ENV)
    # rank 1 leaves every barrier a second late, so rank 0 has always written what follows a barrier first
    late_rank = tmp_path / "late_rank.py"
    late_rank.write_text(LATE_RANK)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         late_rank, "--run-dir", tmp_path / "ddp", "--cache-dir", cache, *TINY, *args], env=ENV)
    single, ddp = metrics(tmp_path / "single"), metrics(tmp_path / "ddp")
    assert len(single) == len(ddp) == 2
    for a, b in zip(single, ddp):
        assert a["step"] == b["step"] and a["tokens_seen"] == b["tokens_seen"] and a["val_tokens"] == b["val_tokens"]
        for k in ("train_loss", "val_loss", "grad_norm"): assert abs(a[k] - b[k]) < 1e-4 * max(1, abs(a[k])), (k, a[k], b[k])
    assert json.loads((tmp_path / "ddp/config.json").read_text())["world_size"] == 2
    assert not list((tmp_path / "ddp").glob("*rank*"))  # only rank 0 wrote files


def test_cli_reports_bad_values_before_any_work(tmp_path):
    res = run(train_cmd(tmp_path / "r", tmp_path / "cache", "--dropout", "1.5"), env=ENV, check=False)
    assert res.returncode == 2 and "dropout must be in [0, 1), got 1.5" in res.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "cache").exists()


def test_sigterm_to_torchrun_stops_every_rank_at_one_step_and_resume_matches(tmp_path):
    "SIGTERM to the launcher (what SLURM sends): every rank stops after the same step, rank 0 saves it, resume is exact."
    cache = tmp_path / "cache"
    args = ["--epochs", "3", "--batch-size", "8", "--dropout", "0.1", "--seed", "1", "--eval-batch-size", "4"]
    torchrun = lambda rd, *extra: [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                                   "-m", "lmlab.train", "--run-dir", rd, *extra]
    run(torchrun(tmp_path / "whole", "--cache-dir", cache, *TINY, *args), env=ENV)
    launcher = subprocess.Popen(torchrun(tmp_path / "stopped", "--cache-dir", cache, *TINY, *args), env={**os.environ, **ENV},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and launcher.poll() is None:
        if (tmp_path / "stopped/metrics.jsonl").exists() and metrics(tmp_path / "stopped"): break  # in epoch 2
        time.sleep(0.01)
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    said = [l for l in err.splitlines() if l.startswith("lmlab-train: ")]
    assert len(said) == 1 and "by SIGTERM; saved to" in said[0], err[-3000:]  # rank 0 speaks for both
    step = int(said[0].split("interrupted at step ")[1].split()[0].replace(",", ""))
    from lmlab.train import load_checkpoint
    assert load_checkpoint(tmp_path / "stopped/last.pt")["step"] == step > metrics(tmp_path / "stopped")[-1]["step"]
    run(torchrun(tmp_path / "stopped", "--resume"), env=ENV)
    assert metrics(tmp_path / "stopped") == metrics(tmp_path / "whole")  # bit for bit, on a CPU
