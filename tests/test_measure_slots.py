"""measure_slots when a slot goes wrong: a slot that never gets ready and one whose worker dies are named in one line
within a stated time, and no worker outlives the measurement, whether it fails, is interrupted or its process is killed.
The probes below stand in for measure_throughput: cheap, and each records its worker's pid so that the test can look."""
import functools, os, signal, subprocess, sys, time
from pathlib import Path
import psutil, pytest

WAIT_S = 3        # measure_slots(wait_s=...): how long any wait may last
ENDS_WITHIN = 20  # what the error may take beyond WAIT_S on a busy 2-core machine (process starts, imports)


def plan():
    from lmlab.sweep import plan_sweep
    return plan_sweep([2e8, 6e8], [4, 8, 16], unique_tokens=200_000, seq_len=32, vocab_size=32, batch_size=16, min_steps=20)


def _first(pid_dir: Path, what: str) -> bool:
    "True in the one worker that claims `what` first: that worker's slot is the one that goes wrong."
    try: os.close(os.open(pid_dir / what, os.O_CREAT | os.O_EXCL)); return True
    except FileExistsError: return False


def probe(model_cfg, batch_size, seq_len, device, steps, ready, pid_dir, fault=None, at_width=8, cuda_graphs=False):
    "A measurement that goes wrong in one slot at `at_width`: 'stuck' never gets ready, 'dies' is killed, 'hangs' waits after ready."
    (Path(pid_dir) / str(os.getpid())).touch()
    if model_cfg.d_model == at_width and fault in ("stuck", "dies") and _first(Path(pid_dir), "victim"):
        if fault == "stuck": time.sleep(3600)
        os.kill(os.getpid(), signal.SIGKILL)
    ready()
    if fault == "hangs": time.sleep(3600)  # every slot, in its timed steps
    return 1000.0 * model_cfg.d_model


def worker_pids(pid_dir: Path) -> list[int]: return [int(p.name) for p in pid_dir.iterdir() if p.name.isdigit()]


def alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE: out.append(pid)
        except psutil.NoSuchProcess: pass
    return out


def gone_within(pids, seconds: float) -> list[int]:
    "The pids still alive after waiting up to `seconds` for them to end."
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline: time.sleep(0.1)
    return alive(pids)


def test_figures_come_width_by_width_from_one_worker_per_slot(tmp_path):
    from lmlab.sweep import Slot, measure_slots
    lines = []
    speeds = measure_slots(plan(), [Slot("cpu")] * 2, wait_s=60, log=lines.append, probe=functools.partial(probe, pid_dir=tmp_path))
    assert speeds == {4: 4000.0, 8: 8000.0, 16: 16000.0}
    assert [l.split(":")[0] for l in lines] == ["width 4", "width 8", "width 16"]
    assert "8,000 tokens/s per run with 2 at once (16,000 in all)" in lines[1]
    assert len(worker_pids(tmp_path)) == 2            # two workers measured all three widths
    assert gone_within(worker_pids(tmp_path), 5) == []


@pytest.mark.parametrize("fault, says", [
    ("stuck", rf"^slot [12] of 2 \(cpu\) warming up width 8: no word from it in {WAIT_S} s \(stuck\); every worker was stopped$"),
    ("dies", r"^slot [12] of 2 \(cpu\) warming up width 8: its worker killed by SIGKILL$")])
def test_a_stuck_or_dead_slot_is_one_line_in_bounded_time(tmp_path, fault, says):
    import re
    from lmlab.sweep import Slot, SlotError, measure_slots
    t0 = time.monotonic()
    with pytest.raises(SlotError) as e:
        measure_slots(plan(), [Slot("cpu")] * 2, wait_s=WAIT_S, probe=functools.partial(probe, pid_dir=tmp_path, fault=fault))
    took = time.monotonic() - t0
    assert re.match(says, str(e.value)), str(e.value)
    assert took < WAIT_S + ENDS_WITHIN, took
    assert gone_within(worker_pids(tmp_path), 5) == []  # the stuck one too


SCRIPT = """
import functools, sys
sys.path.insert(0, {tests!r})
from test_measure_slots import plan, probe
from lmlab.sweep import Slot, measure_slots
if __name__ == "__main__":
    measure_slots(plan(), [Slot("cpu")] * 2, wait_s=600, probe=functools.partial(probe, pid_dir={pid_dir!r}, fault="hangs"))
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_no_worker_outlives_a_measurement_that_is_killed_or_interrupted(tmp_path, sig):
    "The measuring process killed outright (SIGKILL), stopped as `timeout` does (SIGTERM) or by Ctrl-C (SIGINT)."
    script = tmp_path / "measure.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), pid_dir=str(tmp_path)))
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(worker_pids(tmp_path)) < 2 and time.monotonic() < deadline and parent.poll() is None: time.sleep(0.1)
    workers = worker_pids(tmp_path)
    assert len(workers) == 2, parent.communicate(timeout=10)
    time.sleep(1)  # both are in their timed steps now, waiting forever
    parent.send_signal(sig)
    parent.communicate(timeout=30)
    assert gone_within(workers, 10) == []
