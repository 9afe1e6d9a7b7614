import os, shutil, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment pytest runs in holds nbdev's commands too
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")


@pytest.fixture
def root(): return ROOT


def run(cmd, cwd=ROOT, env=None, timeout=600, check=True):
    "Run a command, failing the test with its output when it fails."
    import subprocess
    res = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {res.returncode}\n--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}")
    return res


# The longest tests first (make test runs two workers): the short ones then fill in around them instead of one long
# test starting last and running alone.
LONGEST_FIRST = ["test_scaling_sweep.py", "test_sweep.py", "test_comparison.py", "test_install.py", "test_train_processes.py",
                 "test_records.py", "test_jupyterlab.py", "test_docs.py", "test_bench_sweep.py", "test_measure_slots.py", "test_sweep_mps.py"]


def pytest_collection_modifyitems(items):
    rank = lambda item: LONGEST_FIRST.index(item.path.name) if item.path.name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: within a file, the order it was written in
