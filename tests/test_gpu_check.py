"""`make gpu-check` where it can be checked without a GPU: one line and exit 0 on a machine without one, and its steps
bounded: a step past its limit is stopped with everything it started, and the check goes on."""
import importlib.util, sys, time
import psutil, pytest, torch
from conftest import ROOT, run


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_0():
    res = run(["make", "-s", "gpu-check"])
    assert res.stdout.strip().splitlines()[-1].startswith("gpu-check: no CUDA GPU on this machine"), res.stdout
    assert "Traceback" not in res.stderr


def test_a_step_past_its_limit_is_stopped_with_its_children(tmp_path):
    # a step that starts a grandchild, and both sleep: the limit stops the whole group
    script = tmp_path / "sleeper.py"
    script.write_text("import os, subprocess, sys, time\n"
                      "if len(sys.argv) > 1: open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)\n"
                      "subprocess.Popen([sys.executable, __file__, sys.argv[0] + '.pid']); time.sleep(600)\n")
    cmd = [sys.executable, str(script)]
    t0 = time.perf_counter()
    res = gpu_check().run_step("sleeper", cmd, 3, tmp_path)
    assert res["status"] == "timed out" and time.perf_counter() - t0 < 15
    pid = int((tmp_path / "sleeper.py.pid").read_text())
    time.sleep(0.5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_failing_step_is_recorded_with_its_output(tmp_path):
    res = gpu_check().run_step("failing", [sys.executable, "-c", "print('some output'); raise SystemExit(3)"], 30, tmp_path)
    assert res["status"] == "failed (exit 3)" and "some output" in res["output"]
    assert (tmp_path / "failing.log").read_text().strip() == "some output"


def test_figures_are_read_from_each_steps_output():
    summaries = gpu_check().summaries
    steps = {"GPU tests": dict(output="...\n8 passed, 1 skipped in 95.2s"),
             "lmlab-eval": dict(output="|              |       |none  |     0|word_perplexity|↓  |98402.5264|±  |   N/A|"),
             "planted sweep": dict(output='  width 8: ...\n{"runs": 12, "tokens": 33038336, "slots": "4 runs at once: 4 x cuda:0, '
                                          '1 CPU thread each", "estimated_s": 20.5, "estimate_cost_s": 6.1, "measured_s": 25.9}')}
    got = summaries(steps, dict(time=time.time() + 3600))  # no results file counts as written by this check
    assert got["GPU tests"] == "8 passed, 1 skipped"
    assert got["lmlab-eval"] == "word perplexity 98402.5264"
    assert got["planted sweep"].startswith("12 runs, 33.0M tokens on 4 runs at once") and "26 s measured, 20 s estimated" in got["planted sweep"]
    assert "training step" not in got and "sweep benchmark" not in got
