"The quick scaling sweep on the planted corpus recovers the loss floor it was built with (several minutes on 2 cores)."
import warnings

from lmlab.chinchilla import bootstrap, fit_isoflop, fit_parametric
from lmlab.sweep import preset_plan
from lmlab.sweep import run_sweep


def test_planted_sweep_recovers_the_entropy_rate(tmp_path):
    plan, data_cfg = preset_plan("planted", cache_dir=str(tmp_path / "cache"))
    assert all(r.passes <= 4 for r in plan.runs) and plan.left_out  # the unique-data rule shaped the plan
    records = run_sweep(tmp_path / "sweep", plan, data_cfg)
    H = data_cfg.markov_source.entropy_rate
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fitting must not warn: warnings would land in committed notebook outputs
        iso = fit_isoflop(records)
        law = fit_parametric(records)
        bs = bootstrap(records, 869_153, n_boot=10)
    assert len(iso["profiles"]) >= 2, iso["skipped"]   # a minimum inside the runs at two budgets or more
    assert abs(law.E / H - 1) < 0.10, (law.E, H)        # the known floor, within 10%
    assert 0.05 <= law.alpha <= 2 and 0.05 <= law.beta <= 2
    assert bs["p10"] <= bs["median"] <= bs["p90"] < float("inf")
