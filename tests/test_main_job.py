"README's main job: Experiment 1 run headless in quick mode writes its run directory, lab log and plot."
import sys
from conftest import ROOT, run


def test_experiment1_runs_headless_in_quick_mode(tmp_path):
    out = run([sys.executable, ROOT / "scripts/run_experiment.py", ROOT / "nbs/experiments/01_experiment1.ipynb", "--mode", "quick",
               "--runs", tmp_path / "runs"], env={"LMLAB_CACHE": str(tmp_path / "cache")}, timeout=900).stdout
    rd = tmp_path / "runs/experiment1-quick"
    for f in ("config.json", "metrics.jsonl", "mha_model_best.pt", "last.pt", "loss.png", "lab_log.md", "01_experiment1.ipynb"):
        assert (rd / f).exists(), f"{f} missing; output:\n{out}"
    log = (rd / "lab_log.md").read_text()
    assert log.startswith("# Experiment 1") and "**Parameters:** 869,153" in log and "Status:" in log
