"lm-evaluation-harness scores an lmlab run as a researcher types it (lmlab-eval), and agrees with the lab book's figures."
import json, sys
from conftest import BIN, run
from test_train_processes import ENV, train_cmd

CROSS_CHECK = """
import json, sys
import numpy as np
from lmlab.data import gpt2_tokenizer
from lmlab.harness import LMLabLM, document_figures, task_metadata, wikitext_documents
from lmlab.lab import evaluate_run
from lm_eval.api.instance import Instance
run_dir, results_file = sys.argv[1], sys.argv[2]
scores = json.load(open(results_file))["results"]["lmlab_wikitext"]
lm = LMLabLM(run_dir)
pages = wikitext_documents(**task_metadata(run_dir))["test"]["page"]
same = document_figures(lm.model, pages, lm.max_length)
split = evaluate_run(run_dir, split="test")
# the same articles, the lab book's fixed windows: within 1% of lm-eval's rolling windows, and not identical
for k, lm_eval_key in (("word_perplexity", "word_perplexity,none"), ("bits_per_byte", "bits_per_byte,none")):
    ratio = same[k] / scores[lm_eval_key]
    assert abs(ratio - 1) < 0.01 and ratio != 1.0, (k, ratio)
# the same text and counts as the lab book's token cache of the split
assert (same["words"], same["bytes"]) == (split["words"], split["bytes"]), (same, split)
# the same windows (an article cut to whole windows): equal, up to the order of float32 additions
enc, L = gpt2_tokenizer(), lm.max_length
ids = max((enc.encode_ordinary(p) for p in pages), key=len)
cut = next(m for m in range(len(ids), 0, -1) if len(enc.encode_ordinary(enc.decode(ids[:m]))) % L == 0)
page = enc.decode(ids[:cut])
assert len(enc.encode_ordinary(page)) >= 3 * L
rolling = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", doc={}, arguments=(page,), idx=0)])[0]
fixed = document_figures(lm.model, [page], L)["nll"]
assert abs(-rolling / fixed - 1) < 1e-6, (rolling, fixed)
print("agree", json.dumps(dict(lm_eval=scores["word_perplexity,none"], lmlab_same=same["word_perplexity"],
                                lmlab_split=split["word_ppl"])))
"""


def test_lmlab_eval_agrees_with_the_lab_books_figures(tmp_path):
    rd = tmp_path / "r"
    # long enough to learn the corpus: context then matters, so rolling and fixed windows differ measurably
    run(train_cmd(rd, tmp_path / "cache", "--epochs", "6", "--batch-size", "4", "--eval-every", "50"), env=ENV)
    res = run([BIN / "lmlab-eval", rd], env=ENV)
    results_file = rd / "lm_eval" / "lmlab_wikitext+lmlab_wikitext_stock.json"
    assert f"wrote {results_file}" in res.stdout
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"): assert metric in res.stdout
    # both figures side by side, each with the line that says what it measures
    assert "| lmlab_wikitext | " in res.stdout and "the text as the model was trained on it" in res.stdout
    assert "| lmlab_wikitext_stock | " in res.stdout and "lm-eval's stock `wikitext` definition" in res.stdout
    results = json.loads(results_file.read_text())
    for task in ("lmlab_wikitext", "lmlab_wikitext_stock"):  # the generated corpus's 8 test articles, all scored
        assert results["results"][task]["sample_len"] == 8

    # a quick look (--limit) is written apart and never replaces the full score
    full = results_file.read_bytes()
    res = run([BIN / "lmlab-eval", rd, "--limit", "2"], env=ENV)
    limited = rd / "lm_eval" / "lmlab_wikitext+lmlab_wikitext_stock.limit2.json"
    assert f"wrote {limited}" in res.stdout and results_file.read_bytes() == full
    assert json.loads(limited.read_text())["results"]["lmlab_wikitext"]["sample_len"] == 2
    assert "agree" in run([sys.executable, "-c", CROSS_CHECK, rd, results_file], env=ENV).stdout

    # an export scores the same; lm-eval also finds the model by name
    out = tmp_path / "export"
    run([BIN / "lmlab-export", rd, out], env=ENV)
    run([BIN / "lmlab-eval", out, "--tasks", "lmlab_wikitext"], env=ENV)
    exported = json.loads((out / "lm_eval" / "lmlab_wikitext.json").read_text())["results"]["lmlab_wikitext"]
    assert exported["bits_per_byte,none"] == results["results"]["lmlab_wikitext"]["bits_per_byte,none"]
    by_name = f"""
import lm_eval, lmlab.harness as h
res = lm_eval.simple_evaluate(model="lmlab", model_args="path={rd},batch_size=5", tasks=["lmlab_wikitext"],
                              task_manager=h.task_manager({str(rd)!r}), log_samples=False, bootstrap_iters=0)
print(repr(res["results"]["lmlab_wikitext"]["bits_per_byte,none"]))
"""
    got = float(run([sys.executable, "-c", by_name], env=ENV).stdout.strip().splitlines()[-1])
    assert abs(got / exported["bits_per_byte,none"] - 1) < 1e-9


def test_lmlab_eval_errors_are_one_line(tmp_path):
    rd = tmp_path / "r"
    run(train_cmd(rd, tmp_path / "cache", "--max-steps", "2", "--batch-size", "4"), env=ENV)
    for argv, needle in (([tmp_path / "nowhere"], "no run or export in"),
                         ([rd, "--tasks", "wikitext_typo"], "unknown lm-eval task 'wikitext_typo'"),
                         ([rd, "--limit", "0"], "limit must be a positive number"),
                         ([rd, "--batch-size", "x"], "invalid int value: 'x'")):
        res = run([BIN / "lmlab-eval", *argv], env=ENV, check=False)
        assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, (argv, res.stderr)
    assert not (rd / "lm_eval").exists()  # nothing written for a bad request
    # without the optional extra: one line naming the way out
    no_extra = "import sys; sys.modules['lm_eval'] = None; from lmlab.harness import main; main(sys.argv[1:])"
    res = run([sys.executable, "-c", no_extra, rd], env=ENV, check=False)
    assert res.returncode == 1 and res.stderr.strip() == ("lmlab-eval: error: lm-evaluation-harness is not installed: "
                                                          "pip install 'lmlab[eval]'"), res.stderr


def test_lm_evals_own_command_reads_the_shipped_task(tmp_path):
    "lm_eval itself, with any model it knows (its dummy one here), scores lmlab_wikitext's articles from --metadata."
    tasks_dir = run([sys.executable, "-c", "import lmlab.harness as h; print(h.TASKS_DIR)"], env=ENV).stdout.strip()
    metadata = json.dumps(dict(dataset="synthetic", synthetic_articles=16, cache_dir=str(tmp_path / "cache")))
    res = run([BIN / "lm_eval", "--model", "dummy", "--include_path", tasks_dir, "--tasks", "lmlab_wikitext",
               "--metadata", metadata, "--output_path", tmp_path / "out"], env=ENV, cwd=tmp_path)
    assert "lmlab_wikitext" in res.stdout and "word_perplexity" in res.stdout
    results, = (tmp_path / "out").rglob("results_*.json")
    assert json.loads(results.read_text())["results"]["lmlab_wikitext"]["sample_len"] == 8  # the generated test articles
