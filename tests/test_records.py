"""The records a run and a sweep write, against records saved by an earlier version of lmlab (tests/data/records/).
Moving code between rooms must not move a single figure: on the kind of CPU that saved them the records are equal bit
for bit. On another kind (its vector width changes how floating-point sums are split) they are compared to 1e-6.
After a change that is meant to change the records, save them again: LMLAB_SAVE_RECORDS=1 pytest tests/test_records.py"""
import json, math, os
from pathlib import Path
import pytest
from conftest import BIN, ROOT, run
from test_train_processes import ENV, TINY, metrics, train_cmd

SAVED = ROOT / "tests/data/records"
RUN_ARGS = ["--epochs", "2", "--batch-size", "4", "--dropout", "0.1", "--seed", "2", "--eval-every", "5"]
SWEEP_ARGS = ["--preset", "planted-small", "--workers", "2"]
TIMINGS = ("time_s", "tokens_per_s")


def cpu_kind() -> str:
    import torch
    return torch.backends.cpu.get_cpu_capability()


def record_of(run_dir: Path) -> dict:
    "What a run directory records, without timings and without the paths that differ from one machine to another."
    config = json.loads((run_dir / "config.json").read_text())
    config["data"].pop("cache_dir")
    for source in config["sources"].values(): source.pop("dir", None)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("time_s")
    summary["best"] = {k: v for k, v in summary["best"].items() if k not in TIMINGS}
    for k in ("best_checkpoint", "last_checkpoint"): summary[k] = Path(summary[k]).name
    return dict(config=config, metrics=metrics(run_dir, drop=TIMINGS), summary=summary)


def close(a, b, path="") -> list[str]:
    "Where `a` and `b` differ, floats allowed 1e-6 relative."
    if isinstance(a, float) and isinstance(b, (int, float)):
        return [] if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12) else [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys(): return [f"{path}: keys {sorted(a.keys() ^ b.keys())} differ"]
        return [d for k in a for d in close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b): return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in close(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def check_against_saved(name: str, records: dict):
    file = SAVED / f"{name}.json"
    if os.environ.get("LMLAB_SAVE_RECORDS") == "1":
        SAVED.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(dict(cpu=cpu_kind(), records=records), indent=1, sort_keys=True) + "\n")
        pytest.skip(f"saved {file}")
    saved = json.loads(file.read_text())
    records = json.loads(json.dumps(records))  # tuples as lists, as the saved file has them
    if saved["cpu"] == cpu_kind(): assert records == saved["records"], close(records, saved["records"])[:10]
    else: assert not close(records, saved["records"]), close(records, saved["records"])[:10]


def test_a_runs_records_are_those_saved(tmp_path):
    run(train_cmd(tmp_path / "run", tmp_path / "cache", *RUN_ARGS), env=ENV)
    check_against_saved("run", record_of(tmp_path / "run"))


def test_a_sweeps_records_are_those_saved(tmp_path):
    res = run([BIN / "lmlab-sweep", *SWEEP_ARGS, "--sweep-dir", tmp_path / "sweep", "--cache-dir", tmp_path / "cache"],
              env=ENV)
    assert "10 runs finished" in res.stdout, res.stdout
    check_against_saved("sweep", {rd.name: record_of(rd) for rd in sorted((tmp_path / "sweep").iterdir())})
