"""CUDA MPS for runs sharing a GPU (lmlab.sweep.gpu_sharing), driven against a stand-in for nvidia-cuda-mps-control that
behaves as the real one does at its interface: `-f` runs the daemon in the foreground, and a bare call sends it the
commands on standard input (`get_server_list`, `quit`), failing when no daemon listens on CUDA_MPS_PIPE_DIRECTORY."""
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import psutil, pytest

FAKE = textwrap.dedent("""\
    #!{python}
    import os, signal, sys, time
    pipe = os.environ["CUDA_MPS_PIPE_DIRECTORY"]
    if sys.argv[1:] == ["-f"]:
        if os.environ.get("FAKE_MPS_FAILS"): sys.exit("cannot reach the GPU")
        open(os.path.join(pipe, "daemon.pid"), "w").write(str(os.getpid()))
        open(os.environ["FAKE_MPS_LOG"], "a").write(f"daemon {{os.getpid()}}\\n")
        while not os.path.exists(os.path.join(pipe, "quit")): time.sleep(0.05)
        sys.exit(0)
    command = sys.stdin.read().strip()
    pid_file = os.path.join(pipe, "daemon.pid")
    if not os.path.exists(pid_file): sys.exit("Cannot find MPS control daemon process")
    open(os.environ["FAKE_MPS_LOG"], "a").write(command + "\\n")
    if command == "quit": open(os.path.join(pipe, "quit"), "w").close()
""")


@pytest.fixture
def fake_mps(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"; bin_dir.mkdir()
    control = bin_dir / "nvidia-cuda-mps-control"
    control.write_text(FAKE.format(python=sys.executable)); control.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    monkeypatch.setenv("FAKE_MPS_LOG", str(tmp_path / "mps.log"))
    return tmp_path / "mps.log"


def gone(pid, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE: return True
        except psutil.NoSuchProcess: return True
        time.sleep(0.05)
    return False


def test_slots_sharing_a_gpu_go_through_a_daemon_of_the_sweeps_own(fake_mps):
    from lmlab.sweep import Slot, describe_slots, gpu_sharing
    said = []
    with gpu_sharing([Slot("cuda:0")] * 2 + [Slot("cuda:1")] * 2, "auto", said.append) as slots:
        pipe = slots[0].mps_pipe
        assert pipe and all(s.mps_pipe == pipe for s in slots) and Path(pipe).is_dir()
        assert describe_slots(slots).endswith("GPUs shared through CUDA MPS")
        daemon = int((Path(pipe) / "daemon.pid").read_text())
        assert psutil.pid_exists(daemon)
    assert said == []
    assert fake_mps.read_text().splitlines()[-1] == "quit" and "get_server_list" in fake_mps.read_text()
    assert gone(daemon) and not Path(pipe).exists()  # stopped, and its folder removed


def test_a_daemon_that_does_not_start_is_one_line_or_an_error(fake_mps, monkeypatch):
    from lmlab.sweep import Slot, gpu_sharing
    monkeypatch.setenv("FAKE_MPS_FAILS", "1")
    said = []
    with gpu_sharing([Slot("cuda:0")] * 2, "auto", said.append) as slots: assert slots == [Slot("cuda:0")] * 2
    assert said == ["runs sharing a GPU take turns on it: CUDA MPS is not available (its daemon did not start: "
                    "cannot reach the GPU)"]
    with pytest.raises(RuntimeError, match="CUDA MPS asked for, but its daemon did not start: cannot reach the GPU"):
        with gpu_sharing([Slot("cuda:0")] * 2, mps="on"): pass


def test_a_users_own_daemon_is_used_as_it_is(fake_mps, monkeypatch):
    from lmlab.sweep import Slot, gpu_sharing
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/tmp/the-users-mps")
    with gpu_sharing([Slot("cuda:0")] * 2, "auto") as slots: assert slots == [Slot("cuda:0")] * 2  # their env reaches the workers
    assert not fake_mps.exists()  # no daemon started, no command sent


SCRIPT = """
import sys, time
from lmlab.sweep import Slot, gpu_sharing
with gpu_sharing([Slot("cuda:0")] * 2, "auto") as slots:
    print(slots[0].mps_pipe, flush=True)
    time.sleep(600)
"""


def test_the_daemon_ends_with_a_sweep_that_is_killed(fake_mps, tmp_path):
    sweep = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    pipe = Path(sweep.stdout.readline().strip())
    daemon = int((pipe / "daemon.pid").read_text())
    sweep.send_signal(signal.SIGKILL); sweep.wait()
    assert gone(daemon), "the MPS daemon outlived the sweep that started it"
