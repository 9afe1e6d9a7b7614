#!/usr/bin/env python
"""Tokenizing a WikiText-103-sized corpus: lmlab's streaming, multi-threaded, cached path vs the plain way.

    python bench/tokenization.py            # ~540 MB corpus (WikiText-103's train split is 539 MB)
    python bench/tokenization.py --mb 50    # a smaller run

Each measurement runs in its own process, so peak memory (max RSS) belongs to that step alone.
The plain baseline (`[enc.encode_ordinary(row) for row in ds["text"]]`, one thread, ids kept as Python lists)
runs on the first `--baseline-mb` of the corpus; its throughput and memory are what a notebook that tokenizes
row by row pays. Results are printed as a table and saved to bench/results/tokenization.json.
"""
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(mode, data_dir, cache_dir, baseline_rows):
    "Run one measurement in this process and print a JSON line."
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import numpy as np
    from lmlab.data import gpt2_tokenizer, load_tokens, load_wikitext
    enc = gpt2_tokenizer()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "lmlab":
        t0 = time.perf_counter()
        ds = load_wikitext("wikitext-103", data_dir, ["train"], cache_dir=Path(cache_dir) / "hf")["train"]
        t_arrow = time.perf_counter() - t0
        t0 = time.perf_counter()
        tok = load_tokens("wikitext-103", "train", data_dir, cache_dir, progress=False)
        t_tok = time.perf_counter() - t0
        res = dict(seconds=t_tok, arrow_seconds=t_arrow, bytes=tok.stats.bytes, tokens=tok.stats.tokens)
    elif mode == "reload":
        t0 = time.perf_counter()
        tok = load_tokens("wikitext-103", "train", data_dir, cache_dir, progress=False)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = np.stack([np.asarray(tok.ids[s:s + 513]) for s in np.random.default_rng(0).integers(0, len(tok) - 513, 32)])
        res = dict(seconds=t_load, batch_ms=(time.perf_counter() - t0) * 1000, tokens=tok.stats.tokens, bytes=tok.stats.bytes)
    else:  # the plain way
        ds = load_wikitext("wikitext-103", data_dir, ["train"], cache_dir=Path(cache_dir) / "hf")["train"]
        rows = ds.select(range(baseline_rows))["text"]
        t0 = time.perf_counter()
        ids = [enc.encode_ordinary(r) for r in rows]
        res = dict(seconds=time.perf_counter() - t0, bytes=sum(len(r.encode()) for r in rows), tokens=sum(map(len, ids)))
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["rss_before_mb"] = rss0 / 1024
    print(json.dumps(res))


def measure(mode, data_dir, cache_dir, baseline_rows=0):
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(data_dir), str(cache_dir), str(baseline_rows)],
                         capture_output=True, text=True, check=False)
    if out.returncode: sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_corpus(dest, mb):
    "A WikiText-shaped parquet train split of about `mb` MB (unique articles tiled to size; validation/test small)."
    import pyarrow as pa, pyarrow.parquet as pq, random
    from lmlab.data import article_rows, make_wikitext_like
    root = make_wikitext_like(dest, "wikitext-103", articles=(1, 50, 50))
    rng, rows, size = random.Random(0), [], 0
    unique = []
    while size < min(mb, 60) * 1e6:  # up to 60 MB of distinct text, then repeated with new titles
        r = article_rows(rng, f"Article {len(unique)}"); unique.append(r); size += sum(len(x.encode()) for x in r)
    writer, total, k = pq.ParquetWriter(root / "train-00000-of-00001.parquet", pa.schema([("text", pa.string())])), 0, 0
    while total < mb * 1e6:
        for r in unique:
            r = r[:1] + [f" = Article {k} = \n"] + r[2:]; k += 1
            rows.extend(r); total += sum(len(x.encode()) for x in r)
            if len(rows) > 200_000: writer.write_table(pa.table({"text": rows})); rows = []
            if total >= mb * 1e6: break
    if rows: writer.write_table(pa.table({"text": rows}))
    writer.close()
    return dest, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=540)
    ap.add_argument("--baseline-mb", type=float, default=30)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(a.child[0], a.child[1], a.child[2], int(a.child[3]))
    work = Path(a.workdir or tempfile.mkdtemp(prefix="lmlab-bench-"))
    t0 = time.perf_counter(); data_dir, total = make_corpus(work / "data", a.mb)
    print(f"generated {total / 1e6:,.0f} MB WikiText-shaped corpus in {time.perf_counter() - t0:.0f} s under {work}", flush=True)
    import pyarrow.parquet as pq
    n_rows = pq.read_metadata(next((data_dir / "wikitext-103-raw-v1").glob("train-*.parquet"))).num_rows
    baseline_rows = int(n_rows * min(a.baseline_mb * 1e6 / total, 1))
    cache = work / "cache"
    lm = measure("lmlab", data_dir, cache)
    re_ = measure("reload", data_dir, cache)
    base = measure("plain", data_dir, cache, baseline_rows)
    cores = os.cpu_count()
    mbps = lambda r: r["bytes"] / 1e6 / r["seconds"]
    grow = lambda r: r["peak_rss_mb"] - r["rss_before_mb"]
    rows = [("corpus tokenized (MB)", f"{base['bytes'] / 1e6:,.0f}", f"{lm['bytes'] / 1e6:,.0f}", ""),
            ("tokens", f"{base['tokens']:,}", f"{lm['tokens']:,}", ""),
            ("throughput (MB/s)", f"{mbps(base):.1f}", f"{mbps(lm):.1f}", f"{mbps(lm) / mbps(base):.1f}x"),
            (f"throughput per core (MB/s, {cores} cores)", f"{mbps(base):.1f} (1 core used)", f"{mbps(lm) / cores:.1f}", ""),
            ("peak RSS (MB)", f"{base['peak_rss_mb']:,.0f}", f"{lm['peak_rss_mb']:,.0f}", f"{lm['peak_rss_mb'] / base['peak_rss_mb']:.2f}x"),
            ("peak RSS above the process's start (MB)", f"{grow(base):,.0f}", f"{grow(lm):,.0f}", ""),
            ("... per MB of text tokenized", f"{grow(base) / (base['bytes'] / 1e6):.2f}", f"{grow(lm) / (lm['bytes'] / 1e6):.3f}", ""),
            ("ids held as", "Python lists", "uint16 file, memory-mapped", ""),
            ("reload of the cached split (s)", "(tokenize again)", f"{re_['seconds']:.3f}", ""),
            ("reload: peak RSS above start (MB)", "", f"{grow(re_):,.0f}", ""),
            ("one 32 x 513 batch from the memory map (ms)", "", f"{re_['batch_ms']:.2f}", "")]
    print(f"\nTokenizing a WikiText-103-sized corpus ({platform.machine()}, {cores} cores; datasets' parquet-to-Arrow step, "
          f"{lm['arrow_seconds']:.1f} s, not included)\n")
    print("| measure | plain (row by row, 1 thread) | lmlab (`load_tokens`) | lmlab / plain |\n|---|---:|---:|---:|")
    for r in rows: print("| " + " | ".join(r) + " |")
    out = HERE / "results" / "tokenization.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(dict(machine=platform.machine(), cores=cores, plain=base, lmlab=lm, reload=re_), indent=1))
    print(f"\nsaved {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
