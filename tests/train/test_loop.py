"""The training loop: it learns, it records what it should, it calls the callbacks, it writes the
run directory; plus the metrics and the distillation loss."""

import json

import numpy as np
import pytest

from tinybnn import nn
from tinybnn.autograd import Tensor
from tinybnn.data import DataLoader, Normalize, dataset_info, load_dataset
from tinybnn.errors import ConfigError, ShapeError
from tinybnn.functional import cross_entropy
from tinybnn.gradcheck import gradcheck
from tinybnn.optim import SGD, Adam, CosineWarmup, flip_ratio, make_optimizer
from tinybnn.quant import Quantizer
from tinybnn.train import (Callback, RunningMean, accuracy, count_correct, distillation_loss,
                           evaluate, fit)

HIDDEN = 32
N_TRAIN, N_TEST = 320, 120   # a slice of the digits: every test here runs in well under a second


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits():
    info = dataset_info("digits")
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    return info, (x[:N_TRAIN], y[:N_TRAIN]), (xt[:N_TEST], yt[:N_TEST])


def tiny_bnn(seed=0):
    """Flatten -> Linear -> BinaryLinear (ste_sign) -> Linear: one binary layer to watch."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, HIDDEN, rng=rng),
                         nn.BinaryLinear(HIDDEN, HIDDEN, rng=rng), nn.Linear(HIDDEN, 10, rng=rng))


def loaders(digits, seed=0, batch_size=32):
    info, (x, y), (xt, yt) = digits
    norm = Normalize(info.mean, info.std)
    train = DataLoader(x, y, batch_size, shuffle=True, rng=seed, transform=norm)
    test = DataLoader(xt, yt, 64, transform=norm)
    return train, test


class Recorder(Callback):
    """Remembers every call, in order."""

    def __init__(self):
        self.calls = []

    def on_fit_begin(self, state):
        self.calls.append(("fit_begin", state.epoch))

    def on_epoch_begin(self, state):
        self.calls.append(("epoch_begin", state.epoch))

    def on_step_end(self, state, logs):
        self.calls.append(("step_end", state.step, logs))

    def on_epoch_end(self, state, record):
        self.calls.append(("epoch_end", record["epoch"]))

    def on_fit_end(self, state):
        self.calls.append(("fit_end", state.epoch))


# ------------------------------------------------------------------------------- training


def test_fit_learns_the_digits(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    history = fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=5, progress=False)
    losses = history.column("train_loss")
    assert losses[-1] < 0.5 * losses[0]
    assert history.last["test_acc"] > 0.7          # chance is 0.1
    assert model.training                           # evaluate() restored training mode


def test_history_records_every_field(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = CosineWarmup(optimizer, total_steps=3)
    history = fit(model, train, test, optimizer, epochs=3, scheduler=scheduler, progress=False)

    assert len(history) == 3
    assert history.column("epoch") == [1, 2, 3]
    for record in history:
        assert set(record) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                               "seconds", "flip_ratio"}
        assert 0 <= record["train_acc"] <= 1 and 0 <= record["test_acc"] <= 1
        assert record["seconds"] > 0
        # one entry per binary weight, named as in model.named_parameters()
        assert set(record["flip_ratio"]) == {"2.weight"}
        assert 0 <= record["flip_ratio"]["2.weight"] <= 1
    # the lr of each epoch is the one it started with: cosine over 3 epochs, stepped per epoch
    assert history.column("lr") == pytest.approx([0.05, 0.05 * 0.75, 0.05 * 0.25])
    assert json.loads(json.dumps(list(history))) == list(history)   # plain JSON
    assert history.best("test_acc")["test_acc"] == max(history.column("test_acc"))


def test_test_metrics_are_those_of_evaluate(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    history = fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=1,
                  progress=False)
    assert evaluate(model, test) == (history.last["test_loss"], history.last["test_acc"])


def test_evaluate_matches_a_manual_computation(digits):
    model = tiny_bnn()
    _, test = loaders(digits)
    model.train()
    loss, acc = evaluate(model, test)
    model.eval()
    x = np.concatenate([bx for bx, _ in test])
    y = np.concatenate([by for _, by in test])
    logits = model(Tensor(x))
    assert loss == pytest.approx(cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx(accuracy(logits, y))


def test_flip_ratio_compares_signs_before_and_after_each_step(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    weight = model[2].weight
    seen = []

    class Snapshot(Callback):
        def on_epoch_begin(self, state):
            self.before = weight.data.copy()

        def on_step_end(self, state, logs):
            seen.append(flip_ratio(self.before, weight.data))
            self.before = weight.data.copy()

    history = fit(model, train, test, SGD(model.parameters(), lr=0.5), epochs=1,
                  callbacks=[Snapshot()], progress=False)
    assert history.last["flip_ratio"]["2.weight"] == pytest.approx(np.mean(seen))
    assert np.mean(seen) > 0


def test_bop_flip_ratio_uses_bops_own_count(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    optimizer = make_optimizer("bop", model, lr=1e-2, threshold=1e-6, gamma=1e-2)
    counted = []

    class BopCount(Callback):
        def on_step_end(self, state, logs):
            counted.append(optimizer.last_flip_ratio["2.weight"])

    history = fit(model, train, test, optimizer, epochs=2, callbacks=[BopCount()],
                  progress=False)
    per_epoch = len(train)
    assert history[1]["flip_ratio"]["2.weight"] == pytest.approx(np.mean(counted[per_epoch:]))
    assert history[0]["lr"] == pytest.approx(1e-2)   # the lr of Adam, Bop's groups have none


def test_callbacks_are_called_in_order(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    recorder = Recorder()
    fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=2, callbacks=[recorder],
        progress=False)
    kinds = [call[0] for call in recorder.calls]
    steps = len(train)
    assert kinds == (["fit_begin"]
                     + (["epoch_begin"] + ["step_end"] * steps + ["epoch_end"]) * 2
                     + ["fit_end"])
    step_calls = [call for call in recorder.calls if call[0] == "step_end"]
    assert [call[1] for call in step_calls] == list(range(1, 2 * steps + 1))
    logs = step_calls[0][2]
    assert set(logs) == {"loss", "acc", "lr", "batch"} and logs["batch"] == 0


def test_a_callback_can_stop_training(digits):
    class StopAfterTwo(Callback):
        def on_epoch_end(self, state, record):
            state.stop_training = record["epoch"] == 2

    model = tiny_bnn()
    train, test = loaders(digits)
    history = fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=10,
                  callbacks=[StopAfterTwo()], progress=False)
    assert len(history) == 2


def test_step_schedule_and_gradient_clipping(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    optimizer = SGD(model.parameters(), lr=0.1)
    scheduler = CosineWarmup(optimizer, total_steps=2 * len(train))
    lrs = []

    class LR(Callback):
        def on_step_end(self, state, logs):
            lrs.append(logs["lr"])

    fit(model, train, test, optimizer, epochs=2, scheduler=scheduler, schedule_unit="step",
        grad_clip=1.0, callbacks=[LR()], progress=False)
    assert lrs == pytest.approx([scheduler.lr_at(0.1, t) for t in range(2 * len(train))])


def test_schedules_of_quantizers_are_advanced(digits):
    calls = []

    class Identity(Quantizer):
        def forward(self, x):
            return x

        def set_progress(self, epoch, epochs):
            calls.append((epoch, epochs))

    model = tiny_bnn()
    model[2].input_quantizer = Identity()
    train, test = loaders(digits)
    fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=3, progress=False)
    assert calls == [(0, 3), (1, 3), (2, 3)]


def test_bad_arguments_are_config_errors(digits):
    model = tiny_bnn()
    train, test = loaders(digits)
    optimizer = Adam(model.parameters(), lr=1e-2)
    with pytest.raises(ConfigError, match="epochs"):
        fit(model, train, test, optimizer, epochs=0, progress=False)
    with pytest.raises(ConfigError, match="schedule_unit"):
        fit(model, train, test, optimizer, epochs=1, schedule_unit="batch", progress=False)
    with pytest.raises(ConfigError, match="Callback"):
        fit(model, train, test, optimizer, epochs=1, callbacks=[print], progress=False)


def test_a_diverging_loss_stops_with_a_clear_error(digits):
    model = tiny_bnn()
    train, test = loaders(digits)

    def nan_loss(logits, labels):
        return cross_entropy(logits, labels) * float("nan")

    with pytest.raises(ConfigError, match="diverged"):
        fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=1, loss_fn=nan_loss,
            progress=False)


# ------------------------------------------------------------------------------- run directory


def test_run_directory_holds_config_metrics_checkpoint_and_curves(digits, tmp_path):
    model = tiny_bnn()
    train, test = loaders(digits)
    run = tmp_path / "runs" / "demo"                       # created with its parents
    config = {"model": "tiny", "lr": 0.01, "note": "a test"}
    history = fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=2, run_dir=run,
                  config=config, progress=False)

    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.npz", "config.json",
                                                     "curves.png", "metrics.jsonl"]
    assert json.loads((run / "config.json").read_text()) == config
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == list(history)
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_shows_loss_accuracy_and_lr(digits, capsys):
    model = tiny_bnn()
    train, test = loaders(digits)
    fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "acc=" in err and "test_acc=" in err
    model = tiny_bnn()
    fit(model, train, test, Adam(model.parameters(), lr=1e-2), epochs=1, progress=False)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------- metrics


def test_accuracy_and_count_correct():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    labels = np.array([1, 0, 0, 0])        # the tie picks class 0, like argmax
    assert count_correct(logits, labels) == 3
    assert accuracy(Tensor(logits), labels) == 0.75
    with pytest.raises(ShapeError):
        accuracy(logits, labels[:2])


def test_running_mean_weights_by_samples():
    mean = RunningMean()
    mean.update(1.0, weight=3)
    mean.update(3.0, weight=1)
    assert mean.mean == 1.5
    assert RunningMean().mean == 0.0


# ------------------------------------------------------------------------------- distillation


def test_distillation_is_zero_when_the_student_copies_the_teacher():
    z = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    loss = distillation_loss(Tensor(z, requires_grad=True), z, np.zeros(4, dtype=np.int64),
                             alpha=1.0, temperature=3.0)
    assert abs(loss.item()) < 1e-6


def test_distillation_with_alpha_zero_is_cross_entropy():
    rng = np.random.default_rng(1)
    s, t = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    got = distillation_loss(Tensor(s), t, y, alpha=0.0).item()
    assert got == pytest.approx(cross_entropy(Tensor(s), y).item())


def test_distillation_value_and_gradient():
    rng = np.random.default_rng(2)
    s, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y = np.array([0, 3, 1])
    alpha, T = 0.7, 2.5

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(t / T), softmax(s / T)
    kl = (p * (np.log(p) - np.log(q))).sum() / 3
    ce = -np.log(softmax(s)[np.arange(3), y]).mean()
    expected = alpha * T * T * kl + (1 - alpha) * ce
    assert distillation_loss(Tensor(s), t, y, alpha, T).item() == pytest.approx(expected)
    # backward against central finite differences, in float64
    gradcheck(lambda z: distillation_loss(z, t, y, alpha, T), s)
    # and the closed form of the KL part: alpha·T·(q − p)/N per logit
    z = Tensor(s.copy(), requires_grad=True)
    distillation_loss(z, t, y, alpha=1.0, temperature=T).backward()
    np.testing.assert_allclose(z.grad, T * (q - p) / 3, rtol=1e-6, atol=1e-9)


def test_distillation_rejects_bad_input():
    s = Tensor(np.zeros((2, 3)))
    with pytest.raises(ShapeError):
        distillation_loss(s, np.zeros((2, 4)), np.zeros(2, dtype=np.int64))
    with pytest.raises(ConfigError):
        distillation_loss(s, np.zeros((2, 3)), np.zeros(2, dtype=np.int64), alpha=1.5)
    with pytest.raises(ConfigError):
        distillation_loss(s, np.zeros((2, 3)), np.zeros(2, dtype=np.int64), temperature=0)
