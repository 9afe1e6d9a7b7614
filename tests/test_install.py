"`pip install lmlab`: a wheel built from the repo installs into a fresh virtual environment and works from elsewhere."
import sys, zipfile
from conftest import ROOT, run


def test_wheel_installs_into_a_fresh_venv(tmp_path):
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT], timeout=900)
    wheel, = (tmp_path / "dist").glob("lmlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"lmlab/data.py", "lmlab/model.py", "lmlab/kernels.py", "lmlab/train.py", "lmlab/callbacks.py", "lmlab/runs.py",
            "lmlab/cli.py", "lmlab/harness.py", "lmlab/tasks/lmlab_wikitext.yaml", "lmlab/tasks/lmlab_wikitext_stock.yaml"} <= set(names)
    assert not any(n.startswith(("tests/", "nbs/", "scripts/")) for n in names)  # the library only

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    py = venv / "bin/python"
    run([py, "-m", "pip", "install", "-q", "torch==2.13.0"], timeout=900)  # CPU build first, as README says
    run([py, "-m", "pip", "install", "-q", wheel], timeout=900)
    run([py, "-m", "pip", "check"])
    elsewhere = tmp_path / "elsewhere"; elsewhere.mkdir()
    out = run([py, "-c", "import lmlab, lmlab.data, lmlab.model, lmlab.train, lmlab.model as m; "
                         "print(lmlab.__file__); print(sum(p.numel() for p in m.LanguageModel().parameters()))"], cwd=elsewhere).stdout
    assert str(venv) in out and "869153" in out
    assert "--run-dir" in run([venv / "bin/lmlab-train", "--help"], cwd=elsewhere).stdout
    # lm-evaluation-harness is an optional extra, not installed here: lmlab-eval says so in one line
    res = run([venv / "bin/lmlab-eval", "runs/exp1"], cwd=elsewhere, check=False)
    assert (res.returncode, res.stderr) == (1, "lmlab-eval: error: lm-evaluation-harness is not installed: "
                                               "pip install 'lmlab[eval]'\n"), res.stderr
