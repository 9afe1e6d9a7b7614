"""Run by test_sweep.py inside its loopback-only network namespace, after it started a Ray head on 127.0.0.1:6399:
lmlab-sweep as Ray tasks on that cluster, with one Ray worker killed mid-run (Ray retries the task; the run resumes)."""
import os, subprocess, sys
from pathlib import Path
from conftest import BIN
from test_sweep import ENV, PRESET, _kill_a_worker_mid_run

tmp = Path(sys.argv[1])
sweep = subprocess.Popen([BIN / "lmlab-sweep", *PRESET, "--ray", "127.0.0.1:6399", "--sweep-dir", tmp / "sweep", "--cache-dir", tmp / "cache"],
                         env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
victim = _kill_a_worker_mid_run(tmp / "sweep", sweep)
print(f"killed the Ray worker of {victim}", flush=True)
out, _ = sweep.communicate(timeout=600)
print(out)
sys.exit(sweep.returncode)
