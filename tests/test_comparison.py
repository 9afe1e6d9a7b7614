"""The comparison compares the runs you made: full mode on local WikiText-shaped files, Experiment 1 run with other
settings than the lab log's, finished and then stopped partway, and it trains nothing; a failing notebook is one line."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
from conftest import BIN, ROOT, run

NBS = ROOT / "nbs/experiments"


def experiment(nb, runs, env, *params, check=True):
    argv = [a for name, value in params for a in ("-p", name, value)]
    return run([sys.executable, ROOT / "scripts/run_experiment.py", NBS / nb, "--mode", "full", "--runs", runs, *argv],
               env=env, timeout=1200, check=check)


def outputs(notebook: Path) -> str:
    "Every text a notebook's cells printed or displayed."
    texts = []
    for c in json.loads(notebook.read_text())["cells"]:
        for o in c.get("outputs", []):
            for t in (o.get("text"), *o.get("data", {}).values()):
                if isinstance(t, (str, list)): texts.append("".join(t))
    return "\n".join(texts)


def snapshot(run_dir: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.iterdir() if p.is_file()}


def test_the_comparison_reads_the_runs_as_they_are_and_trains_nothing(tmp_path):
    from lmlab.data import make_wikitext_like
    data, runs = tmp_path / "wikitext", tmp_path / "runs"
    make_wikitext_like(data, "wikitext-2-raw-v1", (40, 6, 6))
    make_wikitext_like(data, "wikitext-103-raw-v1", (100, 6, 6))  # the same validation articles, more training ones
    env = {"LMLAB_WIKITEXT_DIR": str(data), "LMLAB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    experiment("01_experiment1.ipynb", runs, env, ("epochs", "1"))
    experiment("02_experiment2.ipynb", runs, env)
    exp1, exp2 = runs / "experiment1-full", runs / "experiment2-full"
    assert json.loads((exp1 / "config.json").read_text())["train"]["epochs"] == 1  # not the lab log's 300
    before = {rd: snapshot(rd) for rd in (exp1, exp2)}

    experiment("03_comparison.ipynb", runs, env)
    shown = outputs(runs / "03_comparison.ipynb")
    assert "Experiment 1: " in shown and "finished" in shown and "No run in" not in shown and "stopped at" not in shown
    assert "resumed from" not in shown and "Best model so far" not in shown  # nothing trained
    assert {rd: snapshot(rd) for rd in (exp1, exp2)} == before

    # Experiment 1 again, stopped by Ctrl-C after its first evaluation: compared at its checkpoints, labelled, not resumed
    os.rename(exp1, tmp_path / "finished-experiment1")
    victim = subprocess.Popen([BIN / "lmlab-train", "--profile", "experiment1", "--run-dir", exp1, "--epochs", "3",
                               "--cache-dir", tmp_path / "cache"], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and victim.poll() is None:
        if (exp1 / "metrics.jsonl").exists() and (exp1 / "metrics.jsonl").read_text().strip(): break
        time.sleep(0.05)
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=300)
    assert victim.returncode == 130 and "interrupted at step" in err, err
    step = int(err.split("interrupted at step ")[1].split()[0].replace(",", ""))
    total = json.loads((exp1 / "config.json").read_text())["total_steps"]
    before = snapshot(exp1)
    experiment("03_comparison.ipynb", runs, env)
    shown = outputs(runs / "03_comparison.ipynb")
    assert f"Experiment 1 (stopped at step {step:,} of {total:,})" in shown, shown[-3000:]
    assert "resumed from" not in shown and "No run in" not in shown
    assert snapshot(exp1) == before and not (exp1 / "summary.json").exists()


def test_a_failing_notebook_is_one_line_naming_the_executed_notebook(tmp_path):
    env = {"LMLAB_CACHE": str(tmp_path / "cache")}
    res = run([sys.executable, ROOT / "scripts/run_experiment.py", NBS / "01_experiment1.ipynb", "--mode", "quick",
               "--runs", tmp_path / "runs", "-p", "epochs", "0"], env=env, timeout=600, check=False)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith("run_experiment.py: error: 01_experiment1.ipynb failed in cell [")
    assert "ValueError: epochs must be a positive integer or None, got 0" in lines[0] and "Traceback" not in res.stderr
    executed = Path(lines[0].rsplit(": ", 1)[1].rstrip("."))
    assert executed.exists() and "epochs must be a positive integer" in executed.read_text()
