"""Small reproducible experiments: how do the activation estimators compare?

``python -m tinybnn.experiments`` trains the binary MLP and the small binary CNN on the digits with
each sign-like activation estimator of :mod:`tinybnn.quant`, over several seeds, through the same
code path as ``tinybnn train``, and prints a Markdown table of the mean (± std) test accuracy.
The README's estimator table was produced with it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
from pathlib import Path

from tqdm import tqdm

#: sign-like activation estimators (multi-bit and {0,1} quantizers are left out)
SIGN_ESTIMATORS = ("ste_sign", "identity_ste", "approx_sign", "swish_sign", "ede", "recu_act",
                   "rsign", "elastic")

#: the training settings of each compared model (CLI options)
SETTINGS = {
    "binary_mlp": ["--model", "binary_mlp", "--epochs", "10"],
    "binary_cnn": ["--recipe", "binary_cnn-digits"],
}


def train_accuracy(options: list[str], seed: int) -> float:
    """Final test accuracy (%) of one ``tinybnn train`` run with ``options`` and ``seed``."""
    from .cli import main

    with tempfile.TemporaryDirectory() as out:
        with contextlib.redirect_stdout(io.StringIO()):
            status = main(["train", *options, "--seed", str(seed), "--no-progress", "--out", out])
        if status not in (0, None):
            raise RuntimeError(f"training failed with options {options}")
        lines = (Path(out) / "metrics.jsonl").read_text().strip().splitlines()
        return 100.0 * float(json.loads(lines[-1])["test_acc"])


def compare_estimators(models=tuple(SETTINGS), estimators=SIGN_ESTIMATORS, seeds=(0, 1, 2)):
    """{model: {estimator: [accuracy per seed]}} for every combination."""
    results = {m: {e: [] for e in estimators} for m in models}
    jobs = [(m, e, s) for m in models for e in estimators for s in seeds]
    for model, estimator, seed in tqdm(jobs, desc="runs"):
        options = SETTINGS[model] + ["--input-quantizer", estimator]
        results[model][estimator].append(train_accuracy(options, seed))
    return results


def markdown_table(results) -> str:
    """Rows: estimators; columns: models; cells: mean ± std over seeds (%)."""
    models = list(results)
    estimators = list(next(iter(results.values())))
    lines = ["| activation estimator | " + " | ".join(models) + " |",
             "|---|" + "---|" * len(models)]
    for e in estimators:
        cells = []
        for m in models:
            accs = results[m][e]
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(f"{statistics.mean(accs):.1f} ± {spread:.1f}")
        lines.append(f"| `{e}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--estimators", nargs="+", default=list(SIGN_ESTIMATORS))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    results = compare_estimators(args.models, args.estimators, tuple(range(args.seeds)))
    print(markdown_table(results))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
