"""`lmlab-sweep` as a researcher runs it: two workers, a worker killed mid-run, and a Ray cluster on 127.0.0.1, each giving
the records of a sequential sweep bit for bit. Ray runs in a network namespace of its own that has only loopback."""
import json, os, secrets, shutil, signal, subprocess, sys, time
from pathlib import Path
import psutil, pytest
from conftest import BIN, run

PRESET = ["--preset", "planted-small"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def records(sweep_dir):
    "Every run's record in a sweep directory, without the directory's own path (it differs between sweeps)."
    from lmlab.sweep import run_record
    out = {}
    for rd in sorted(Path(sweep_dir).iterdir()):
        rec = run_record(rd)
        out[rec.pop("name")] = {k: v for k, v in rec.items() if k != "run_dir"}
    return out


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    "The reference: the same sweep, one run at a time."
    tmp = tmp_path_factory.mktemp("sequential")
    res = run([BIN / "lmlab-sweep", *PRESET, "--workers", "1", "--sweep-dir", tmp / "sweep", "--cache-dir", tmp / "cache"], env=ENV)
    assert "10 runs finished" in res.stdout, res.stdout
    return records(tmp / "sweep")


def test_two_workers_give_the_sequential_records(tmp_path, sequential):
    res = run([BIN / "lmlab-sweep", *PRESET, "--workers", "2", "--sweep-dir", tmp_path / "sweep", "--cache-dir", tmp_path / "cache"],
              env=ENV)
    assert "| run | width | N |" in res.stdout.split("sweep directory:")[0]  # the plan comes first
    assert "2 runs at once: 2 x cpu" in res.stdout
    assert records(tmp_path / "sweep") == sequential


def test_steps_through_captured_graphs_give_the_sequential_records(tmp_path, sequential):
    "--cuda-graphs: on a CPU each step runs through CapturedStep's buffers without capture; the records do not move."
    res = run([BIN / "lmlab-sweep", *PRESET, "--workers", "2", "--cuda-graphs", "--sweep-dir", tmp_path / "sweep",
               "--cache-dir", tmp_path / "cache"], env=ENV)
    assert "10 runs finished" in res.stdout
    assert json.loads(next((tmp_path / "sweep").glob("*/config.json")).read_text())["train"]["cuda_graphs"] is True
    assert records(tmp_path / "sweep") == sequential


def _holder_of(lock: Path):
    "The process that has the run's lock file open: the worker training it."
    for p in psutil.process_iter(["pid"]):
        try:
            if any(f.path == str(lock) for f in p.open_files()): return p
        except (psutil.NoSuchProcess, psutil.AccessDenied): continue
    return None


def _kill_a_worker_mid_run(sweep_dir: Path, sweep: subprocess.Popen, deadline_s: float = 300, sig=signal.SIGKILL) -> str:
    "Send `sig` to the worker of a run that has saved a checkpoint and not finished; the run's name."
    deadline = time.time() + deadline_s
    while time.time() < deadline and sweep.poll() is None:
        for rd in sorted(sweep_dir.glob("*")):
            if (rd / "last.pt").exists() and not (rd / "summary.json").exists():
                worker = _holder_of((rd / ".lock").resolve())
                if worker is not None and not (rd / "summary.json").exists():
                    worker.send_signal(sig)
                    return rd.name
        time.sleep(0.05)
    raise AssertionError("no run could be caught between its first checkpoint and its end: " + (sweep.stdout.read() or "")[-2000:])


def test_a_killed_worker_resumes_and_the_records_are_the_same(tmp_path, sequential):
    sweep = subprocess.Popen([BIN / "lmlab-sweep", *PRESET, "--workers", "2", "--sweep-dir", tmp_path / "sweep",
                              "--cache-dir", tmp_path / "cache"], env={**os.environ, **ENV},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = _kill_a_worker_mid_run(tmp_path / "sweep", sweep)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:]
    assert f"{victim}: its worker killed by SIGKILL; starting it again from its last checkpoint (retry 1 of 2)" in out, out[-3000:]
    assert "resumed from step" in out
    assert records(tmp_path / "sweep") == sequential


def test_a_worker_stopped_by_sigterm_saves_and_the_sweep_goes_on_from_its_step(tmp_path, sequential):
    "SIGTERM to one worker alone (an OOM guard, an operator): it saves its step, and the sweep starts it again from there."
    sweep = subprocess.Popen([BIN / "lmlab-sweep", *PRESET, "--workers", "2", "--sweep-dir", tmp_path / "sweep",
                              "--cache-dir", tmp_path / "cache"], env={**os.environ, **ENV},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = _kill_a_worker_mid_run(tmp_path / "sweep", sweep, sig=signal.SIGTERM)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:]
    assert f"{victim}: its worker was stopped (interrupted at step " in out and "by SIGTERM; saved to" in out, out[-3000:]
    assert "starting it again from its last checkpoint (retry 1 of 2)" in out and "resumed from step" in out
    assert records(tmp_path / "sweep") == sequential


def test_sigterm_to_the_sweep_saves_its_runs_and_the_next_sweep_goes_on(tmp_path, sequential):
    "What SLURM or Kubernetes does to a sweep: SIGTERM passes on to the workers, which save; the same command goes on."
    cmd = [BIN / "lmlab-sweep", *PRESET, "--workers", "2", "--sweep-dir", tmp_path / "sweep", "--cache-dir", tmp_path / "cache"]
    sweep = subprocess.Popen(cmd, env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not any((rd / "last.pt").exists() and not (rd / "summary.json").exists()
                                             for rd in (tmp_path / "sweep").glob("*")):
        time.sleep(0.05)
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=300)
    lines = [l for l in err.splitlines() if l.startswith("lmlab-sweep")]  # the rest is the progress bar
    assert sweep.returncode == 143 and len(lines) == 1 and "Traceback" not in err, (out[-2000:], err[-2000:])
    assert lines[0].startswith("lmlab-sweep: sweep interrupted by SIGTERM: ") and "run the sweep again to go on" in lines[0]
    assert "stopping on SIGTERM" in out
    assert not _holders(tmp_path / "sweep")  # no worker left behind
    res = run(cmd, env=ENV)
    assert "resumed from step" in res.stdout
    assert records(tmp_path / "sweep") == sequential


def _holders(sweep_dir: Path) -> list:
    return [p for rd in sweep_dir.glob("*") if (p := _holder_of((rd / ".lock").resolve())) is not None]


def test_a_run_that_fails_is_named_and_the_others_finish(tmp_path):
    "A worker that dies every time is given up on after --max-retries, by name; the rest of the sweep finishes."
    sweep = subprocess.Popen([BIN / "lmlab-sweep", *PRESET, "--workers", "2", "--max-retries", "0", "--sweep-dir", tmp_path / "sweep",
                              "--cache-dir", tmp_path / "cache"], env={**os.environ, **ENV},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = _kill_a_worker_mid_run(tmp_path / "sweep", sweep)
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 1, (out[-2000:], err[-2000:])
    lines = [l for l in err.splitlines() if l.startswith("lmlab-sweep:")]
    assert lines[0] == f"lmlab-sweep: {victim} failed: its worker died 1 time(s), last killed by SIGKILL", err
    assert lines[-1].startswith("lmlab-sweep: 1 of 10 runs failed; the others finished") and "Traceback" not in err
    assert len(list((tmp_path / "sweep").glob("*/summary.json"))) == 9


def test_bad_values_are_one_line_before_any_work(tmp_path):
    for args, needle in ((["--workers", "0"], "--workers must be a positive integer, got 0"),
                         (["--device", "cuda"], "CUDA is not available"),
                         (["--threads-per-run", "0"], "--threads-per-run must be a positive integer, got 0")):
        res = run([BIN / "lmlab-sweep", *PRESET, *args, "--sweep-dir", tmp_path / "s", "--cache-dir", tmp_path / "cache"],
                  env=ENV, check=False)
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        assert res.returncode == 1 and len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr, res.stderr
        assert not (tmp_path / "s").exists()


UNSHARE = shutil.which("unshare")
needs_netns = pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0,
                                 reason="the Ray test keeps Ray on loopback in a network namespace of its own (needs root and unshare)")


@needs_netns
def test_a_ray_cluster_gives_the_sequential_records(tmp_path, sequential):
    "A head node on 127.0.0.1 with 2 CPUs (2 worker processes), lmlab-sweep --ray connected to it; a Ray worker killed mid-run."
    ray = BIN / "ray"
    script = f"""
set -e
ip link set lo up
# Ray 2.59+ authenticates with a token; the driver must be told the cluster's (this test's own, not ~/.ray's)
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN={secrets.token_hex(32)}
'{ray}' start --head --node-ip-address 127.0.0.1 --port 6399 --num-cpus 2 --num-gpus 0 --include-dashboard false \\
    --disable-usage-stats > '{tmp_path}/ray-start.log' 2>&1
trap "'{ray}' stop --force > /dev/null 2>&1" EXIT
'{sys.executable}' '{Path(__file__).with_name("ray_sweep.py")}' '{tmp_path}'
"""
    res = run([UNSHARE, "-n", "bash", "-c", script], env=ENV, timeout=900)
    out = res.stdout + res.stderr
    assert "Ray tasks on 127.0.0.1:6399" in out, out[-3000:]
    assert "killed the Ray worker of" in out, out[-3000:]
    assert "without token authentication" not in out  # the cluster lets in only holders of its token
    assert records(tmp_path / "sweep") == sequential
    # here, not in a test of its own: `ray stop` stops every Ray of the machine, and tests run side by side
    _joining_an_open_ray_cluster_is_said_in_one_line(tmp_path)


def _joining_an_open_ray_cluster_is_said_in_one_line(tmp_path):
    "An open cluster (Ray's default for `ray start`): the sweep joins it, and says once what that means."
    ray = BIN / "ray"
    join = "from lmlab.sweep import connect_ray; connect_ray('127.0.0.1:6398').shutdown()"
    script = f"""
set -e
ip link set lo up
RAY_AUTH_MODE=disabled '{ray}' start --head --node-ip-address 127.0.0.1 --port 6398 --num-cpus 1 --num-gpus 0 \\
    --include-dashboard false --disable-usage-stats > '{tmp_path}/ray-start.log' 2>&1
trap "'{ray}' stop --force > /dev/null 2>&1" EXIT
unset RAY_AUTH_MODE RAY_AUTH_TOKEN RAY_AUTH_TOKEN_PATH  # a driver without a token, as a user's shell
'{sys.executable}' -c "{join}"
"""
    res = run([UNSHARE, "-n", "bash", "-c", script], env=ENV, timeout=300)
    said = [l for l in res.stderr.splitlines() if "without token authentication" in l]
    assert len(said) == 1 and said[0].startswith("warning: the Ray cluster at 127.0.0.1:6398 was joined without"), res.stderr
    assert "RAY_AUTH_MODE=token" in said[0]


def _a_long_result(n, slot): return "x" * n


def test_a_result_larger_than_a_pipe_comes_back():
    "A long run's record can outgrow a pipe's buffer: the sweep reads it while the worker sends, instead of both waiting."
    from lmlab.sweep import Slot, in_processes
    results, failures = in_processes([("long", _a_long_result, (4 << 20,))], [Slot("cpu")], max_retries=0)
    assert failures == {} and results == {"long": "x" * (4 << 20)}
