"""Checkpoints: exact round trips, exact resumption, no pickle, clear errors for bad files."""

import json
import os

import numpy as np
import pytest

from tinybnn import nn
from tinybnn.data import Compose, DataLoader, Normalize, RandomHorizontalFlip, dataset_info
from tinybnn.data import load_dataset
from tinybnn.errors import CheckpointError
from tinybnn.optim import SGD, Adam, CosineWarmup, flatten_state, make_optimizer
from tinybnn.train import fit, load_checkpoint, save_checkpoint
from tinybnn.train.checkpoint import META_KEY

HIDDEN = 24


def tiny_bnn(seed=0, hidden=HIDDEN):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden, rng=rng),
                         nn.BinaryLinear(hidden, hidden, rng=rng),
                         nn.Dropout(0.1, rng=np.random.default_rng(seed + 100)),
                         nn.Linear(hidden, 10, rng=rng))


@pytest.fixture(scope="module")
def digits():
    info = dataset_info("digits")
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test")
    return info, (x[:256], y[:256]), (xt[:100], yt[:100])


def setup(digits, seed, optimizer="sgd", epochs=4):
    """Everything a run is built from; ``seed`` changes the initialisation, the shuffling and the
    augmentation, so a resumed run only matches if the checkpoint restores all of them."""
    info, (x, y), (xt, yt) = digits
    model = tiny_bnn(seed)
    augment = Compose([RandomHorizontalFlip(rng=np.random.default_rng(seed + 1)),
                       Normalize(info.mean, info.std)])
    train = DataLoader(x, y, 32, shuffle=True, rng=seed, transform=augment)
    test = DataLoader(xt, yt, 50, transform=Normalize(info.mean, info.std))
    if optimizer == "sgd":
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    else:
        opt = make_optimizer(optimizer, model, lr=1e-2)
    scheduler = CosineWarmup(opt, total_steps=epochs * len(train), warmup_steps=len(train))
    return model, train, test, opt, scheduler


def without_time(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def assert_same_state(a: dict, b: dict):
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def assert_same_optimizer_state(a, b):
    """Two optimizer state_dicts hold the same hyperparameters and bit-identical buffers."""
    arrays_a, meta_a = flatten_state(a)
    arrays_b, meta_b = flatten_state(b)
    assert meta_a == meta_b
    assert_same_state(arrays_a, arrays_b)


def trained_for_one_epoch(digits, tmp_path, optimizer="sgd"):
    model, train, test, opt, scheduler = setup(digits, 0, optimizer)
    fit(model, train, test, opt, 1, scheduler=scheduler, schedule_unit="step", progress=False)
    return model, opt, scheduler


# ------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "bop"])
def test_round_trip_restores_model_optimizer_and_scheduler(digits, tmp_path, optimizer):
    model, opt, scheduler = trained_for_one_epoch(digits, tmp_path, optimizer)
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, scheduler, epoch=1,
                           config={"model": "tiny", "hidden": HIDDEN}, step=8)

    model2, _, _, opt2, scheduler2 = setup(digits, 7, optimizer)   # other initial values
    checkpoint = load_checkpoint(path)
    checkpoint.restore(model2, opt2, scheduler2)

    assert checkpoint.epoch == 1 and checkpoint.step == 8
    assert checkpoint.config == {"model": "tiny", "hidden": HIDDEN}
    assert_same_state(model.state_dict(), model2.state_dict())
    assert_same_optimizer_state(opt.state_dict(), opt2.state_dict())
    assert scheduler.state_dict() == scheduler2.state_dict()
    assert [g.get("lr") for g in opt.param_groups] == [g.get("lr") for g in opt2.param_groups]


def test_the_file_is_a_plain_npz_without_pickle(digits, tmp_path):
    model, opt, scheduler = trained_for_one_epoch(digits, tmp_path)
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, scheduler, epoch=1)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        arrays = {name: archive[name] for name in names}
    assert {f"model/{k}" for k in model.state_dict()} <= names
    assert any(name.startswith("optimizer.") for name in names)
    assert all(a.dtype != object for a in arrays.values())
    meta = json.loads(arrays[META_KEY].tobytes().decode("utf-8"))
    assert meta["format"] == "tinybnn-checkpoint" and meta["epoch"] == 1


def test_saving_replaces_the_file_atomically(digits, tmp_path):
    model, opt, scheduler = trained_for_one_epoch(digits, tmp_path)
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, epoch=1)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(path, model, opt, epoch=2, config={"bad": object()})
    assert path.read_bytes() == before                      # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["ck.npz"]               # and no temporary file is left


# ------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("optimizer", ["sgd", "bop"])
def test_resume_gives_the_same_run_as_no_interruption(digits, tmp_path, optimizer):
    model, train, test, opt, scheduler = setup(digits, 1, optimizer)
    full = fit(model, train, test, opt, 4, scheduler=scheduler, schedule_unit="step",
               run_dir=tmp_path / "full", progress=False)

    # stop after 2 of the 4 epochs ...
    first, train2, test2, opt2, scheduler2 = setup(digits, 1, optimizer)
    fit(first, train2, test2, opt2, 2, scheduler=scheduler2, schedule_unit="step",
        run_dir=tmp_path / "resumed", progress=False)

    # ... and resume into objects built from another seed: the checkpoint must restore it all
    resumed, train3, test3, opt3, scheduler3 = setup(digits, 99, optimizer)
    history = fit(resumed, train3, test3, opt3, 4, scheduler=scheduler3, schedule_unit="step",
                  run_dir=tmp_path / "resumed", progress=False,
                  resume_from=tmp_path / "resumed" / "checkpoint.npz")

    assert without_time(history) == without_time(full)
    assert_same_state(model.state_dict(), resumed.state_dict())
    assert_same_optimizer_state(opt.state_dict(), opt3.state_dict())
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert without_time(json.loads(line) for line in lines) == without_time(full)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.npz").epoch == 4


def test_resume_from_a_finished_run_trains_no_more(digits, tmp_path):
    model, train, test, opt, scheduler = setup(digits, 2)
    fit(model, train, test, opt, 2, scheduler=scheduler, run_dir=tmp_path, progress=False)
    again, train, test, opt, scheduler = setup(digits, 3)
    history = fit(again, train, test, opt, 2, scheduler=scheduler, progress=False,
                  resume_from=tmp_path / "checkpoint.npz")
    assert len(history) == 2
    assert_same_state(model.state_dict(), again.state_dict())


# ------------------------------------------------------------------------------- bad files


@pytest.fixture
def good_checkpoint(digits, tmp_path):
    model, opt, scheduler = trained_for_one_epoch(digits, tmp_path)
    return save_checkpoint(tmp_path / "good.npz", model, opt, scheduler, epoch=1)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nothere.npz.*does not exist"):
        load_checkpoint(tmp_path / "nothere.npz")


def test_truncated_file(good_checkpoint, tmp_path):
    broken = tmp_path / "truncated.npz"
    data = good_checkpoint.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.npz"):
        load_checkpoint(broken)


@pytest.mark.parametrize("where", [0.3, 0.5, 0.9])
def test_corrupt_file(good_checkpoint, tmp_path, where):
    broken = tmp_path / "corrupt.npz"
    data = bytearray(good_checkpoint.read_bytes())
    start = int(len(data) * where)
    data[start:start + 16] = bytes(255 - b for b in data[start:start + 16])
    broken.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.npz"):
        load_checkpoint(broken).restore(tiny_bnn())


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", b"PK\x03\x04garbage"])
def test_not_a_checkpoint_at_all(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_checkpoint(path)


def test_an_npz_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(CheckpointError, match="plain.npz.*not a tinybnn checkpoint"):
        load_checkpoint(path)
    npy = tmp_path / "single.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match="single.npy"):
        load_checkpoint(npy)


def test_a_checkpoint_of_another_model_does_not_fit(good_checkpoint):
    checkpoint = load_checkpoint(good_checkpoint)
    with pytest.raises(CheckpointError, match="good.npz.*does not fit"):
        checkpoint.restore(tiny_bnn(hidden=HIDDEN + 8))


def test_a_checkpoint_of_another_optimizer_does_not_fit(good_checkpoint):
    model = tiny_bnn()
    with pytest.raises(CheckpointError, match="good.npz.*SGD.*Adam"):
        load_checkpoint(good_checkpoint).restore(model, Adam(model.parameters(), lr=1e-3))


def test_resume_from_a_bad_file_names_it(digits, tmp_path):
    model, train, test, opt, scheduler = setup(digits, 0)
    (tmp_path / "bad.npz").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="bad.npz"):
        fit(model, train, test, opt, 2, progress=False, resume_from=tmp_path / "bad.npz")
