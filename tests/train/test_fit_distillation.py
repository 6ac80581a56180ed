"""fit(..., teacher=...): knowledge distillation in the training loop."""

import numpy as np
import pytest

from tinybnn import nn
from tinybnn.autograd import Tensor, no_grad
from tinybnn.data import DataLoader, Normalize, dataset_info, load_dataset
from tinybnn.errors import ConfigError, ShapeError
from tinybnn.optim import SGD
from tinybnn.train import distillation_loss, evaluate, fit

N_TRAIN, N_TEST = 96, 64


@pytest.fixture(scope="module")
def digits():
    info = dataset_info("digits")
    norm = Normalize(info.mean, info.std)
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    return (norm(x[:N_TRAIN]), y[:N_TRAIN]), (norm(xt[:N_TEST]), yt[:N_TEST])


def student(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 24, rng=rng), nn.BatchNorm1d(24),
                         nn.BinaryLinear(24, 24, rng=rng), nn.Linear(24, 10, rng=rng))


def teacher_net(seed=1):
    """A real-valued net with batch norm: its eval and training outputs differ."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32, rng=rng), nn.BatchNorm1d(32),
                         nn.ReLU(), nn.Linear(32, 10, rng=rng))


def _loaders(digits):
    (x, y), (xt, yt) = digits
    return DataLoader(x, y, 32, shuffle=False), DataLoader(xt, yt, 32)


def _state(model):
    return [p.data.copy() for p in model.parameters()]


def test_fit_with_a_teacher_takes_the_steps_of_a_hand_written_distillation_loop(digits):
    train, test = _loaders(digits)
    teacher = teacher_net()
    teacher.train()
    options = {"alpha": 0.7, "temperature": 3.0}

    model = student()
    fit(model, train, test, SGD(model.parameters(), lr=0.1), epochs=2, progress=False,
        teacher=teacher, distillation=options)

    twin, reference_teacher = student(), teacher_net()
    reference_teacher.eval()
    optimizer = SGD(twin.parameters(), lr=0.1)
    for _ in range(2):
        twin.train()
        for x, y in train:
            with no_grad():
                target = reference_teacher(Tensor(x)).data
            loss = distillation_loss(twin(Tensor(x)), target, y, **options)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for got, expected in zip(_state(model), _state(twin)):
        np.testing.assert_array_equal(got, expected)


def test_the_teacher_is_not_trained_and_gets_its_mode_back(digits):
    train, test = _loaders(digits)
    teacher = teacher_net()
    teacher.train()
    before = _state(teacher) + [b.copy() for b in (teacher[2].running_mean,
                                                   teacher[2].running_var)]
    model = student()
    fit(model, train, test, SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
        teacher=teacher)
    after = _state(teacher) + [teacher[2].running_mean, teacher[2].running_var]
    for got, expected in zip(after, before):
        np.testing.assert_array_equal(got, expected)
    assert teacher.training and all(p.grad is None for p in teacher.parameters())


def test_a_callable_teacher_and_the_test_loss_stays_cross_entropy(digits):
    train, test = _loaders(digits)
    seen = []

    def teacher(x):                       # e.g. logits of another library's model
        seen.append(x.shape)
        return np.zeros((len(x), 10), np.float32)

    model = student()
    history = fit(model, train, test, SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
                  teacher=teacher, distillation={"alpha": 1.0})
    assert seen == [(32, 1, 8, 8)] * 3
    assert history[-1]["test_loss"] == pytest.approx(evaluate(model, test)[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"distillation": {"alpha": 0.5}}, "need a teacher"),
    ({"teacher": "resnet20"}, "teacher must be a tinybnn Module or a callable"),
    ({"teacher": teacher_net(), "loss_fn": lambda logits, y: logits.sum()},
     "either loss_fn= or teacher="),
    ({"teacher": teacher_net(), "distillation": {"tau": 2.0}}, "takes 'alpha' and 'temperature'"),
])
def test_bad_distillation_arguments_are_refused(digits, kwargs, message):
    train, test = _loaders(digits)
    model = student()
    with pytest.raises(ConfigError, match=message):
        fit(model, train, test, SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
            **kwargs)


def test_a_teacher_with_other_classes_is_a_shape_error(digits):
    train, test = _loaders(digits)
    model = student()
    with pytest.raises(ShapeError, match="same shape"):
        fit(model, train, test, SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
            teacher=lambda x: np.zeros((len(x), 7), np.float32))
