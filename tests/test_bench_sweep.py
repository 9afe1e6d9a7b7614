"""bench/sweep.py's GPU mode where it can be checked without a GPU: it stops in one line, and --measure-plan's training of
a cut plan runs the plan's own runs (here two of them, on CPU slots) and reports measured, estimated and extrapolated times."""
import json, os, subprocess, sys
import pytest, torch
from conftest import ROOT

BENCH = ROOT / "bench" / "sweep.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_one_line():
    res = subprocess.run([sys.executable, str(BENCH), "--device", "cuda"], capture_output=True, text=True, timeout=120)
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 1 and len(lines) == 1 and "has no CUDA GPU" in lines[0] and "Traceback" not in res.stderr, res.stderr


def test_a_bad_fraction_is_one_line():
    res = subprocess.run([sys.executable, str(BENCH), "--device", "cuda", "--measure-plan", "5"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and res.stderr.strip() == "bench/sweep.py: --measure-plan must be a fraction in (0, 1], got 5.0"


MEASURE = """
import dataclasses, json, sys
sys.path.insert(0, {bench!r})  # workers find the cut plan's run function by module name, as under the script itself
import sweep as bench
from lmlab.sweep import preset_plan
from lmlab.sweep import Slot
if __name__ == "__main__":
    plan, _ = preset_plan("wikitext-103", unique_tokens=115_000_000)
    plan = dataclasses.replace(plan, runs=sorted(plan.runs, key=lambda r: r.model.d_model)[:2])  # the two narrowest runs
    fraction = plan.batch_size * plan.seq_len / min(r.tokens_to_train for r in plan.runs)        # about one step each
    res = bench.measure_plan(plan, fraction, [Slot("cpu")] * 2, {{r.model.d_model: 1e4 for r in plan.runs}},
                             unique_tokens=200_000, val_tokens=2 * 512 + 1)
    print(json.dumps(dict(res, tokens_to_train=[r.tokens_to_train for r in plan.runs], step_tokens=plan.batch_size * plan.seq_len)))
"""


def test_measure_plan_trains_the_cut_plan_and_extrapolates(tmp_path):
    script = tmp_path / "measure_plan.py"
    script.write_text(MEASURE.format(bench=str(BENCH.parent)))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    fraction, step = out["fraction"], out["step_tokens"]
    cut = [max(1, round(d * fraction) // step) * step for d in out["tokens_to_train"]]
    assert out["tokens"] == sum(cut) and out["runs_at_once"] == 2
    assert out["measured_s"] > 0 and out["full_extrapolated_s"] == pytest.approx(out["measured_s"] / fraction)
    assert out["estimated_s"] == pytest.approx(max(cut) / 1e4)  # two runs on two slots: the longer one sets the time
    assert "extrapolated from the measured time" in res.stdout and "2 runs at once" in res.stdout


def test_the_runs_per_gpu_table_from_measured_speeds(monkeypatch, capsys):
    "gpu()'s arithmetic and table, with measure_slots standing in for a GPU: k runs sharing it, with and without MPS."
    import argparse, importlib.util
    import lmlab.sweep
    from lmlab.sweep import Slot
    spec = importlib.util.spec_from_file_location("bench_sweep_table", BENCH)
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    per_run = {(1, "off"): 1000.0, (4, "off"): 300.0, (4, "auto"): 800.0}  # tokens/s per run, every width alike
    def fake_measure(plan, slots, steps, wait_s, log, mps):
        log("width 32: ...")
        return {r.model.d_model: per_run[(len(slots), mps)] for r in plan.runs}
    monkeypatch.setattr(lmlab.sweep, "measure_slots", fake_measure)
    monkeypatch.setattr(lmlab.sweep, "device_slots", lambda device, runs_per_gpu: [Slot(device)] * runs_per_gpu)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a GPU standing in")
    a = argparse.Namespace(unique_tokens=115_000_000, runs_per_gpu=[1, 4], mps=["off", "auto"], steps=5, wait_s=60, cuda_graphs=False,
                           measure_plan=None)
    out = bench.gpu(a)
    assert list(out["tokens_per_s"]) == ["1 at once", "4 at once, mps off", "4 at once, mps auto"]
    assert out["total_throughput_gain"] == {"1 at once": 1.0, "4 at once, mps off": 1.2, "4 at once, mps auto": 3.2}
    assert out["best"] == dict(setup="4 at once, mps auto", runs_per_gpu=4)
    assert out["table"][-2] == ["GPU total vs 1 at once", "1.00x", "1.20x", "3.20x"]
    assert "best: 4 at once, mps auto" in capsys.readouterr().out
