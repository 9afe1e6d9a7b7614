import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment pytest runs in holds nbdev's commands too


@pytest.fixture
def root(): return ROOT


def run(cmd, cwd=ROOT, env=None, timeout=600, check=True):
    "Run a command, failing the test with its output when it fails."
    import subprocess
    res = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {res.returncode}\n--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}")
    return res
