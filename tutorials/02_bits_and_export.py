# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 2 — Where the bits pay: XNOR-popcount, export, speed
#
# Tutorial 1 trained binary networks with float arithmetic: every binary weight and activation was
# a float32 `+1.0` or `-1.0`. That is how training works (gradients need real numbers), but it
# wastes 31 of every 32 bits. Here we cash in:
#
# 1. a ±1 dot product is `K − 2·popcount(a XOR b)` on packed bits;
# 2. how tinybnn packs bits (`pack_bits`), and the XNOR-popcount GEMM on three backends;
# 3. train a small binary CNN on the digits;
# 4. `export` it to a bit-packed inference model — and check that its logits are *exactly* the
#    model's, not just close;
# 5. the file on disk, and what a corrupted file does;
# 6. speed: the exported model against the float model, and which op takes the time.
#
# Everything runs on the CPU; the whole notebook takes under a minute.

# %% tags=["parameters"]
# Parameters (papermill/nbclient may override them). TINYBNN_SMOKE=1 makes a quick check run.
import os

SMOKE = os.environ.get("TINYBNN_SMOKE", "0") == "1"
EPOCHS = 1 if SMOKE else 8             # training epochs of the binary CNN
WIDTH = 32                             # channels of the CNN's binary convolutions
REPEATS = 2 if SMOKE else 10           # timing repeats (the best one counts)

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import tinybnn as tb
from tinybnn import kernels
from tinybnn.data import DataLoader, load_dataset
from tinybnn.deploy import InferenceModel, export
from tinybnn.models import binary_cnn
from tinybnn.optim import AdamW, CosineWarmup
from tinybnn.train import evaluate, fit

NOTEBOOK_START = time.perf_counter()
print("tinybnn", tb.__version__, "| smoke mode" if SMOKE else "| full run",
      "| kernel backends:", kernels.available_backends())

# %% [markdown]
# ## 1. A ±1 dot product is a popcount
#
# Take two vectors of ±1 values. Where they agree, the product is +1; where they differ, −1. So
#
# $$a \cdot b = (\text{agreements}) - (\text{disagreements}) = K - 2\,(\text{disagreements}).$$
#
# Store +1 as bit 1 and −1 as bit 0: the disagreements are the 1-bits of `a XOR b`, and counting
# them is one `popcount` instruction per 64 values.

# %%
rng = np.random.default_rng(0)
K = 10
a = np.where(rng.random(K) < 0.5, -1.0, 1.0).astype(np.float32)
b = np.where(rng.random(K) < 0.5, -1.0, 1.0).astype(np.float32)
a_bits, b_bits = (a > 0).astype(int), (b > 0).astype(int)
disagree = a_bits ^ b_bits
print("a        ", a.astype(int))
print("b        ", b.astype(int))
print("a bits   ", a_bits)
print("b bits   ", b_bits)
print("a XOR b  ", disagree, " popcount =", disagree.sum())
print(f"float dot = {a @ b:+.0f}   K - 2*popcount = {K - 2 * disagree.sum():+d}")

# %% [markdown]
# ## 2. Packing, and the XNOR-popcount GEMM
#
# `kernels.pack_bits(x, axis)` packs the signs of `x` along an axis into `uint64` words: value `j`
# is bit `j % 64` of word `j // 64` (little-endian), bit 1 means +1, and **sign(0) = +1** (a zero
# packs as a 1 bit, as `sign` does in training). The last word is padded with 0 bits in *both*
# operands, so the padding never counts as a disagreement. `unpack_bits` goes back to ±1.

# %%
x = np.array([[0.5, -2.0, 0.0, 3.0, -0.1]], dtype=np.float32)
packed = kernels.pack_bits(x)
print("values      ", x[0])
print("packed word ", packed, "=", np.binary_repr(int(packed[0, 0]), width=5)[::-1],
      "(bit 0 first)")
print("unpacked    ", kernels.unpack_bits(packed, x.shape[1])[0])

# %% [markdown]
# `xnor_gemm(a_packed, b_packed, k)` computes all the dot products between the rows of two
# packed matrices: the `numpy` backend is the readable reference (`np.bitwise_count`), the `numba`
# backend the fast one (hardware popcount, vectorized, all cores), `cupy` the GPU one. All give
# the float matmul **bit for bit** — here on a convolution-sized problem, timed side by side with
# the float32 BLAS product of the same ±1 matrices.

# %%
M, N, K = 4096, 64, 576                  # ResNet-20's last stage: 64 channels, 3x3 kernels
A = np.where(rng.random((M, K)) < 0.5, -1.0, 1.0).astype(np.float32)
B = np.where(rng.random((N, K)) < 0.5, -1.0, 1.0).astype(np.float32)
A_packed, B_packed = kernels.pack_bits(A), kernels.pack_bits(B)
print(f"A: {A.nbytes / 1024:.0f} KiB as float32, {A_packed.nbytes / 1024:.0f} KiB packed")


def best_time(run, repeats=REPEATS):
    run()                                # warm-up (and Numba's compilation, the first time)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


reference = A @ B.T
timings = {"float32 BLAS": best_time(lambda: A @ B.T)}
for backend in ("numpy", "numba"):
    dots = kernels.xnor_gemm(A_packed, B_packed, K, backend=backend)
    assert np.array_equal(dots, reference), backend
    timings[f"xnor_gemm ({backend})"] = best_time(
        lambda backend=backend: kernels.xnor_gemm(A_packed, B_packed, K, backend=backend))
for name, seconds in timings.items():
    print(f"{name:20s} {1000 * seconds:8.3f} ms   "
          f"{timings['float32 BLAS'] / seconds:5.1f}x the BLAS speed")
print("all backends equal the float matmul exactly")

# %% [markdown]
# The NumPy reference is slow (it materializes every XOR), the Numba kernel is many times faster
# than BLAS on the same matrices: it does 64 multiply-adds with one XOR and one popcount.
# `tinybnn bench kernels` measures this at the shapes of ResNet-20, ResNet-18 and VGG-Small.
#
# ## 3. Train a small binary CNN on the digits
#
# The 8×8 digits ship with scikit-learn, so nothing is downloaded. `binary_cnn` has a real
# first convolution and a real classifier; the convolutions in between are W1A1 (binary weights
# and activations, `ste_sign` on both).

# %%
tb.manual_seed(0)
x_train, y_train = load_dataset("digits", "train")
x_test, y_test = load_dataset("digits", "test")
train_loader = DataLoader(x_train, y_train, batch_size=32, shuffle=True, rng=0)
test_loader = DataLoader(x_test, y_test, batch_size=256)

model = binary_cnn(input_shape=x_train.shape[1:], num_classes=10, width=WIDTH, rng=0)
optimizer = AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
scheduler = CosineWarmup(optimizer, total_steps=EPOCHS * len(train_loader))
history = fit(model, train_loader, test_loader, optimizer, epochs=EPOCHS, scheduler=scheduler,
              schedule_unit="step", progress=False)
loss, acc = evaluate(model, test_loader)
print(f"after {EPOCHS} epoch(s): test accuracy {100 * acc:.1f}%")

# %% [markdown]
# ## 4. Export: packed weights, exactly the same logits
#
# `export(model)` reads the trained model in eval mode and builds an inference model: the binary
# convolutions keep their weights as packed bits (1 bit each), the batch norm after each of them
# is folded into the convolution's output stage (or into an integer threshold when only the sign
# of the result is needed), and the real layers stay in float32. `describe()` lists its ops.

# %%
inference = export(model, input_shape=x_train.shape[1:])
print(inference.describe())

# %% [markdown]
# The promise is not "close to" the model: the exported model computes the same float32 values,
# so the logits are identical. The binary layers' dot products are integers either way, and
# every float operation after them happens in the same order as in the training code.

# %%
model.eval()
with tb.no_grad():
    float_logits = model(tb.Tensor(x_test)).data
for backend in ("numpy", "numba"):
    logits = inference.predict(x_test, backend=backend)
    print(f"{backend:6s} max |logit difference| = {np.max(np.abs(logits - float_logits))}, "
          f"argmax identical: {np.array_equal(logits.argmax(1), float_logits.argmax(1))}")
    assert np.array_equal(logits, float_logits)

# %% [markdown]
# ## 5. On disk
#
# `save` writes one `.npz` file (no pickle) with a JSON description of the ops and a checksum of
# every array; `load` checks both. The packed binary weights take 1 bit each — the float
# checkpoint of the same model stores 32.

# %%
folder = Path(tempfile.mkdtemp())
exported_path = inference.save(folder / "binary_cnn.npz")
float_path = folder / "binary_cnn_float.npz"
np.savez(float_path, **model.state_dict())
sizes = {"float checkpoint": float_path.stat().st_size,
         "exported": exported_path.stat().st_size}
for name, size in sizes.items():
    print(f"{name:17s} {size / 1024:7.1f} KiB")
print(f"{sizes['float checkpoint'] / sizes['exported']:.1f}x smaller "
      "(the real first and last layers stay float32; on ResNet-18 the ratio is 21.7x)")

again = InferenceModel.load(exported_path)
assert np.array_equal(again.predict(x_test), float_logits)

# flip one byte in the middle of the file: load refuses it with a clear message
damaged = bytearray(exported_path.read_bytes())
damaged[len(damaged) // 2] ^= 0xFF
broken_path = folder / "damaged.npz"
broken_path.write_bytes(bytes(damaged))
try:
    InferenceModel.load(broken_path)
except tb.TinyBNNError as error:
    print("load refused the damaged file:", error)

# %% [markdown]
# ## 6. Speed
#
# On such a tiny network a good part of the time is spent outside the binary layers (the real
# first convolution, pooling, batch norms), so the gain is smaller; on a binary ResNet-20 with
# CIFAR-sized images the binary convolutions dominate, and the exported model runs 3.2–3.7×
# faster than PyTorch's float32 model of the same shape on this project's 2-core machine
# (`tinybnn bench infer`). `profile()` shows where the time goes.

# %%
batch = np.repeat(x_test, 4, axis=0)[:1024]


def float_forward():
    with tb.no_grad():
        return model(tb.Tensor(batch)).data


speed = {"float model (tinybnn)": best_time(float_forward),
         "exported (numba)": best_time(lambda: inference.predict(batch, backend="numba"))}
for name, seconds in speed.items():
    print(f"{name:22s} {len(batch) / seconds:10.0f} images/s")

rows = inference.profile(batch, backend="numba")
shares = {}
for row in rows:
    shares[row["kind"]] = shares.get(row["kind"], 0.0) + row["share"]

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2))
left.bar(list(speed), [len(batch) / s for s in speed.values()], color=["tab:gray", "tab:blue"])
left.set_ylabel("images / s")
left.set_title(f"digits, batch of {len(batch)}")
kinds = sorted(shares, key=shares.get)
right.barh(kinds, [100 * shares[k] for k in kinds], color="tab:blue")
right.set_xlabel("% of the exported model's time")
right.set_title("profile() by op")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What next
#
# * `tinybnn export --checkpoint runs/<run>/checkpoint.npz --out model.npz` does steps 4–5 for any
#   run of `tinybnn train`.
# * `tinybnn bench kernels`, `tinybnn bench infer` and `tinybnn bench size` measure the kernels,
#   the exported ResNet-20 against PyTorch, and the size of an exported ResNet-18.
# * `kernels/cpu_conv.py` explains, step by step, how one Numba kernel packs, convolves and
#   applies the float tail of a residual unit; `kernels/xnor.cu` is the same on the GPU.

# %%
print(f"notebook ran in {time.perf_counter() - NOTEBOOK_START:.1f} s")
