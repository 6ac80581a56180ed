"""The command line: the main job, eval, bench, summary, and one-line errors with exit status 2."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinybnn.cli import main
from tinybnn.train import load_checkpoint


def run_cli(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``main(argv)`` run in this process."""
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *words):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tinybnn: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


# ------------------------------------------------------------------------------- train and eval


def test_train_writes_the_run_and_prints_the_accuracy(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, _ = run_cli(["train", "--epochs", "1", "--out", str(out), "--no-progress"],
                                capsys)
    assert status == 0
    final = stdout.strip().splitlines()[-1]
    assert final.startswith("final test accuracy: ") and "%" in final and str(out) in final
    accuracy = float(final.split(": ")[1].split("%")[0])
    assert 50 < accuracy <= 100             # one epoch of the main job is already far above chance
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.jsonl", "checkpoint.npz",
                                              "curves.png"}
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "binary_mlp" and config["data"] == "digits"
    assert config["epochs"] == 1 and config["seed"] == 0
    record = json.loads((out / "metrics.jsonl").read_text())
    assert round(100 * record["test_acc"], 1) == accuracy

    # eval rebuilds the model from the checkpoint's config and finds the same accuracy
    status, stdout, _ = run_cli(["eval", "--checkpoint", str(out / "checkpoint.npz")], capsys)
    assert status == 0
    assert stdout.startswith(f"test accuracy: {accuracy:.1f}%")


def test_train_shows_progress_unless_told_not_to(tmp_path, capsys):
    quick = ["train", "--epochs", "1", "--batch-size", "128"]
    status, _, err = run_cli([*quick, "--out", str(tmp_path / "a")], capsys)
    assert status == 0 and "epoch 1/1" in err and "loss=" in err and "lr=" in err
    status, _, err = run_cli([*quick, "--out", str(tmp_path / "b"), "--no-progress"], capsys)
    assert status == 0 and err == ""


def test_options_reach_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, _ = run_cli(["train", "--epochs", "2", "--batch-size", "128", "--lr", "0.02",
                            "--optimizer", "sgd", "--seed", "3", "--input-quantizer",
                            "approx_sign", "--out", str(out), "--no-progress"], capsys)
    assert status == 0
    config = load_checkpoint(out / "checkpoint.npz").config
    assert (config["epochs"], config["batch_size"], config["lr"], config["optimizer"],
            config["seed"]) == (2, 128, 0.02, "sgd", 3)
    assert config["model_options"]["input_quantizer"] == "approx_sign"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    # "none" keeps a layer's inputs real (W1A32)
    out = tmp_path / "w1a32"
    status, _, _ = run_cli(["train", "--epochs", "1", "--batch-size", "128", "--input-quantizer",
                            "none", "--out", str(out), "--no-progress"], capsys)
    assert status == 0
    assert load_checkpoint(out / "checkpoint.npz").config["model_options"]["input_quantizer"] \
        is None


def test_same_seed_same_result(tmp_path, capsys):
    accuracies = []
    for name in ("a", "b"):
        run_cli(["train", "--epochs", "1", "--batch-size", "128", "--seed", "5", "--out",
                 str(tmp_path / name), "--no-progress"], capsys)
        accuracies.append((tmp_path / name / "metrics.jsonl").read_text())
    strip = [{k: v for k, v in json.loads(a).items() if k != "seconds"} for a in accuracies]
    assert strip[0] == strip[1]


def test_default_run_dir_is_under_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, stdout, _ = run_cli(["train", "--epochs", "1", "--batch-size", "128",
                                 "--no-progress"], capsys)
    assert status == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("binary_mlp-digits-")
    assert f"runs/{run.name}" in stdout


def test_recipe_prints_the_published_accuracy(tmp_path, capsys, monkeypatch):
    from tinybnn.models import recipes

    if "binary_cnn-digits" not in recipes.available_recipes():
        pytest.skip("no small digits recipe registered")
    status, stdout, _ = run_cli(["train", "--recipe", "binary_cnn-digits", "--epochs", "1",
                                 "--out", str(tmp_path / "r"), "--no-progress"], capsys)
    assert status == 0
    assert "published: " in stdout.splitlines()[-1]
    assert load_checkpoint(tmp_path / "r" / "checkpoint.npz").config["recipe"] == \
        "binary_cnn-digits"


# ------------------------------------------------------------------------------- bad input


@pytest.fixture
def corrupt_checkpoint(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    return path


@pytest.mark.parametrize("argv, words", [
    (["train", "--data", "nosuchdata"], ["nosuchdata", "digits"]),
    (["train", "--model", "nosuchmodel"], ["nosuchmodel", "binary_mlp"]),
    (["train", "--epochs", "-1"], ["--epochs", "-1"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--epochs", "2.5"], ["--epochs", "2.5"]),
    (["train", "--lr", "abc"], ["--lr", "abc"]),
    (["train", "--lr", "nan"], ["--lr"]),
    (["train", "--lr", "-0.1"], ["--lr"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--seed", "x"], ["--seed"]),
    (["train", "--optimizer", "rmsprop"], ["rmsprop", "adam"]),
    (["train", "--recipe", "nosuchrecipe"], ["nosuchrecipe"]),
    (["train", "--weight-quantizer", "nosuchquantizer"], ["nosuchquantizer", "ste_sign"]),
    (["train", "--bogus"], ["--bogus"]),
    (["eval"], ["--checkpoint"]),
    (["bench", "nosuchbench"], ["nosuchbench"]),
    (["bench", "infer", "--bogus", "1"], ["--bogus", "--batch-size", "--repeats"]),
    (["bench", "infer", "--repeats", "x"], ["--repeats", "int", "'x'"]),
    (["bench", "infer", "--repeats"], ["--repeats", "needs a value"]),
    (["bench", "infer", "8"], ["takes", "'8'"]),
    (["bench", "size", "--repeats", "2"], ["takes no options", "--repeats"]),
    (["summary", "--model", "nosuchmodel"], ["nosuchmodel"]),
    (["frobnicate"], ["frobnicate"]),
    ([], ["required"]),
])
def test_bad_arguments(argv, words, capsys):
    status, out, err = run_cli(argv, capsys)
    assert_one_line_error(status, err, *words)
    assert out == ""


def test_missing_checkpoint(tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    status, _, err = run_cli(["eval", "--checkpoint", str(missing)], capsys)
    assert_one_line_error(status, err, "missing.npz", "does not exist")


def test_corrupt_checkpoint(corrupt_checkpoint, capsys):
    status, _, err = run_cli(["eval", "--checkpoint", str(corrupt_checkpoint)], capsys)
    assert_one_line_error(status, err, "corrupt.npz")


def test_checkpoint_without_a_run_config(tmp_path, capsys):
    from tinybnn import nn
    from tinybnn.train import save_checkpoint

    path = save_checkpoint(tmp_path / "bare.npz", nn.Linear(2, 2), epoch=1)
    status, _, err = run_cli(["eval", "--checkpoint", str(path)], capsys)
    assert_one_line_error(status, err, "bare.npz", "model")


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "run"):      # a file, and a folder below a file
        status, _, err = run_cli(["train", "--epochs", "1", "--out", str(out)], capsys)
        assert_one_line_error(status, err, str(out), "--out")


def test_surge_without_the_module_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import tinybnn.cli as cli

    def missing(name):
        error = ModuleNotFoundError(f"No module named {name!r}")
        error.name = name
        raise error

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    status, _, err = run_cli(["train", "--surge", "0.01", "--epochs", "1", "--out",
                              str(tmp_path / "s")], capsys)
    assert_one_line_error(status, err, "SURGE is not available")


@pytest.mark.skipif(importlib.util.find_spec("tinybnn.surge") is None,
                    reason="tinybnn.surge is not there yet")
def test_surge_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "s"
    status, stdout, _ = run_cli(["train", "--surge", "0.01", "--epochs", "1", "--out", str(out),
                                 "--no-progress"], capsys)
    assert status == 0 and "final test accuracy" in stdout
    assert load_checkpoint(out / "checkpoint.npz").config["surge"] == 0.01
    status, stdout, _ = run_cli(["eval", "--checkpoint", str(out / "checkpoint.npz")], capsys)
    assert status == 0 and stdout.startswith("test accuracy:")


def test_export_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(["export", "--checkpoint", str(tmp_path / "x.npz")], capsys)
    assert_one_line_error(status, err, "x.npz")


def test_export_writes_the_inference_model(tmp_path, capsys):
    pytest.importorskip("tinybnn.deploy.export")
    run = tmp_path / "run"
    run_cli(["train", "--epochs", "1", "--batch-size", "128", "--out", str(run), "--no-progress"],
            capsys)
    out = tmp_path / "model.npz"
    status, stdout, _ = run_cli(["export", "--checkpoint", str(run / "checkpoint.npz"), "--out",
                                 str(out)], capsys)
    assert status == 0 and out.exists()
    assert str(out) in stdout


# ------------------------------------------------------------------------------- bench, summary


def test_bench_prints_the_colleagues_table(capsys, monkeypatch):
    import tinybnn.bench

    rows = [{"label": "a shape", "tinybnn_ms": 12.5}]
    monkeypatch.setattr(tinybnn.bench, "bench_conv", lambda: rows)
    monkeypatch.setattr(tinybnn.bench, "format_table", lambda got: f"TABLE of {len(got)} row(s)")
    status, out, _ = run_cli(["bench", "conv"], capsys)
    assert status == 0
    assert out.strip() == "TABLE of 1 row(s)"


def test_bench_kernels_prints_its_table(capsys, monkeypatch):
    bench = pytest.importorskip("tinybnn.kernels.bench")
    monkeypatch.setattr(bench, "bench_kernels", lambda: ["row"])
    monkeypatch.setattr(bench, "format_table", lambda got: f"KERNELS {got}")
    status, out, _ = run_cli(["bench", "kernels"], capsys)
    assert status == 0 and out.strip() == "KERNELS ['row']"


def test_bench_train_prints_its_numbers(capsys, monkeypatch):
    import tinybnn.bench_train

    monkeypatch.setattr(tinybnn.bench_train, "bench_train",
                        lambda: {"model": "resnet20", "tinybnn_images_per_s": 123.456})
    status, out, _ = run_cli(["bench", "train"], capsys)
    assert status == 0
    assert "resnet20" in out and "123.5" in out


def test_summary_prints_the_table(capsys):
    status, out, _ = run_cli(["summary", "--model", "binary_mlp", "--data", "digits"], capsys)
    assert status == 0
    assert "BinaryLinear" in out


# ------------------------------------------------------------------------------- the real script


def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    script = shutil.which("tinybnn") or str(Path(sys.executable).parent / "tinybnn")
    if not os.path.exists(script):
        pytest.skip("the tinybnn console script is not installed")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    for argv in (["train", "--lr", "abc"], ["eval", "--checkpoint", str(broken)]):
        result = subprocess.run([script, *argv], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("tinybnn: error: ")
        assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------- schedules


def test_recipe_schedules():
    from tinybnn import nn
    from tinybnn.cli import make_scheduler
    from tinybnn.optim import SGD

    def lrs(settings, steps, per_epoch=1):
        optimizer = SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        scheduler, unit = make_scheduler(optimizer, settings, per_epoch)
        values = []
        for _ in range(steps):
            values.append(optimizer.param_groups[0]["lr"])
            if scheduler is not None:
                scheduler.step()
        return unit, values

    unit, values = lrs({"schedule": "step", "milestones": [2, 4], "gamma": 0.1, "epochs": 6}, 6)
    assert unit == "epoch"
    assert values == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    unit, values = lrs({"schedule": "cosine", "warmup_epochs": 1, "epochs": 3}, 6, per_epoch=2)
    assert unit == "step"
    assert values[:2] == pytest.approx([0.1 / 3, 0.2 / 3]) and values[2] == pytest.approx(0.1)
    assert lrs({"schedule": "constant", "epochs": 3}, 3) == ("epoch", [0.1] * 3)


def test_bench_options_become_the_benchmark_functions_keyword_arguments(capsys, monkeypatch):
    import tinybnn.deploy.bench as bench

    calls = []

    def fake_infer(batch_size: int = 256, repeats: int = 10, warmup_seconds: float = 1.0):
        calls.append(dict(batch_size=batch_size, repeats=repeats, warmup_seconds=warmup_seconds))
        return {"what": "infer"}

    monkeypatch.setattr(bench, "bench_infer", fake_infer)
    monkeypatch.setattr(bench, "format_table", lambda got: "DEPLOY")
    status, _, _ = run_cli(["bench", "infer", "--repeats", "20", "--warmup-seconds", "0.5"],
                           capsys)
    assert status == 0
    assert calls == [dict(batch_size=256, repeats=20, warmup_seconds=0.5)]


def test_bench_boolean_and_optional_int_options(capsys, monkeypatch):
    import tinybnn.bench_train

    calls = []

    def fake_train(model: str = "resnet20", torch: bool = True, threads: int | None = None,
                   shapes=None):
        calls.append(dict(model=model, torch=torch, threads=threads, shapes=shapes))
        return {"model": model}

    monkeypatch.setattr(tinybnn.bench_train, "bench_train", fake_train)
    status, _, _ = run_cli(["bench", "train", "--no-torch", "--threads", "1", "--model",
                            "resnet18"], capsys)
    assert status == 0
    assert calls == [dict(model="resnet18", torch=False, threads=1, shapes=None)]
    status, _, err = run_cli(["bench", "train", "--shapes", "1"], capsys)
    assert_one_line_error(status, err, "--shapes", "--torch", "--threads")


@pytest.mark.parametrize("what, function", [("infer", "bench_infer"),
                                             ("size", "model_size_report")])
def test_bench_infer_and_size_print_the_deploy_tables(capsys, monkeypatch, what, function):
    import tinybnn.deploy.bench as bench

    monkeypatch.setattr(bench, function, lambda: {"what": what})
    monkeypatch.setattr(bench, "format_table", lambda got: f"DEPLOY {got['what']}")
    status, out, _ = run_cli(["bench", what], capsys)
    assert status == 0 and out.strip() == f"DEPLOY {what}"
