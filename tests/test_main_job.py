"README's main job: Experiment 1 run headless in quick mode writes its run directory, lab log and plot; -p sets its parameters."
import json, sys
from conftest import ROOT, run


def test_experiment1_runs_headless_in_quick_mode(tmp_path):
    res = run([sys.executable, ROOT / "scripts/run_experiment.py", ROOT / "nbs/experiments/01_experiment1.ipynb", "--mode", "quick",
               "--runs", tmp_path / "runs", "-p", "epochs", "1"], env={"LMLAB_CACHE": str(tmp_path / "cache")}, timeout=900)
    out = res.stdout
    rd = tmp_path / "runs/experiment1-quick"
    for f in ("config.json", "metrics.jsonl", "mha_model_best.pt", "last.pt", "loss.png", "lab_log.md", "01_experiment1.ipynb"):
        assert (rd / f).exists(), f"{f} missing; output:\n{out}"
    log = (rd / "lab_log.md").read_text()
    assert json.loads((rd / "config.json").read_text())["train"]["epochs"] == 1  # -p epochs 1 reached the run
    executed = json.loads((rd / "01_experiment1.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])  # the notebook records it too
    assert log.startswith("# Experiment 1") and "**Parameters:** 869,153" in log and "Status:" in log
    assert "Kernel is running over TCP" not in res.stdout + res.stderr, res.stderr  # a quiet first run: IPC, not TCP


def test_unknown_parameters_are_refused_before_running(tmp_path):
    res = run([sys.executable, ROOT / "scripts/run_experiment.py", ROOT / "nbs/experiments/01_experiment1.ipynb", "-p", "epoch", "1",
               "--runs", tmp_path / "runs"], check=False)
    assert res.returncode != 0 and "'epoch' is not a parameter of 01_experiment1.ipynb" in res.stderr and "EPOCHS" in res.stderr
    assert not (tmp_path / "runs").exists()
