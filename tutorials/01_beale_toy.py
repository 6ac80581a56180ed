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
# # Tutorial 1 — The Beale toy problem: from a full-precision net to SURGE
#
# In this first tutorial we train a tiny network whose only job is to *output a point*: the
# minimum of the Beale function. It is small enough that every number can be printed and every
# gradient looked at, and yet it shows the central difficulty of binary neural networks (BNNs):
# the sign function has no useful gradient, so training relies on a *surrogate*.
#
# We go step by step:
#
# 1. the Beale function and its landscape, and plain gradient descent on it;
# 2. a full-precision (FP) network that learns to output the minimum;
# 3. binarizing that network — and why `sign()` has no gradient;
# 4. two surrogate gradients: the straight-through estimator (STE) and Bi-Real's ApproxSign;
# 5. SURGE (Surrogate Gradient Adaptation): its two branches and its scale λ;
# 6. the experiment of the SURGE paper's Appendix C (Figures A–D and G), over several seeds;
# 7. gradient histograms and heatmaps with and without SURGE;
# 8. how to inspect *any* gradient of *any* step yourself.
#
# Everything runs on the CPU with NumPy; the whole notebook takes about a minute.

# %% tags=["parameters"]
# Parameters (papermill/nbclient may override them). TINYBNN_SMOKE=1 makes a quick check run.
import os

SMOKE = os.environ.get("TINYBNN_SMOKE", "0") == "1"
STEPS = 20 if SMOKE else 1500          # optimizer steps per run
SEEDS = [0] if SMOKE else [0, 1, 2, 3, 4]
HIDDEN = 16                            # hidden units of the toy net
D_IN = 8                               # size of the fixed input vector z
LR = 0.01                              # Adam's learning rate
ETA = 0.01                             # SURGE's η (Eq. 7)

# %%
import time

import numpy as np

import tinybnn as tb
from tinybnn import nn, surge
from tinybnn import inspect as ti
from tinybnn.models import beale as B
from tinybnn.optim import Adam

NOTEBOOK_START = time.perf_counter()
print("tinybnn", tb.__version__, "| smoke mode" if SMOKE else "| full run",
      f"| {STEPS} steps x {len(SEEDS)} seeds")

# %% [markdown]
# ## 1. The Beale function
#
# $$f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2$$
#
# is a classic test function for optimizers: it is zero only at $(3, 0.5)$, the minimum sits in
# a long, curved, flat valley, and the walls grow like $y^6$. `tinybnn.models.beale.beale` builds
# it from the engine's operators, so it is differentiable like any loss.

# %%
p = tb.tensor(np.array([3.0, 0.5]))
print("f(3, 0.5) =", B.beale(p).item())
print("f(0, 0)   =", B.beale(tb.tensor(np.array([0.0, 0.0]))).item())
fig = B.plot_landscape()
fig.axes[0].set_title("the Beale landscape (log scale)")
fig

# %% [markdown]
# **Gradient descent on the point itself.** Before any network, let us move a point
# $p = (x, y)$ downhill. `p.requires_grad=True` asks the engine to record every operation;
# `loss.backward()` walks the recorded graph backwards and leaves $\partial f/\partial p$ in
# `p.grad`.

# %%
point = tb.tensor(np.array([0.0, 0.0], dtype=np.float32), requires_grad=True)
opt = Adam([point], lr=0.05)
path = [point.numpy().copy()]
for step in range(10 if SMOKE else 600):
    opt.zero_grad()
    loss = B.beale(point)
    loss.backward()
    opt.step()
    path.append(point.numpy().copy())
path = np.array(path)
print(f"after {len(path) - 1} Adam steps: p = {path[-1]}, f = {B.beale(point).item():.2e}")
fig = B.plot_landscape()
fig.axes[0].plot(path[:, 0], path[:, 1], color="white", linewidth=1.5, label="Adam on (x, y)")
fig.axes[0].legend(fontsize=8)
fig

# %% [markdown]
# ## 2. A full-precision network that outputs the minimum
#
# The toy model of the paper's Appendix C has "an input layer, a hidden layer with ReLU
# activation, and an output layer that produces 2D coordinates". The paper does not say what the
# input is, how wide the hidden layer is, or how it is trained, so we choose (and you can change
# each in the parameters cell):
#
# - the input is a fixed random vector $z \in \mathbb{R}^{8}$ (drawn from the seed);
# - 16 hidden units, no biases; weights from PyTorch's default (Kaiming-uniform) initialisation;
# - Adam, learning rate 0.01, 1500 steps.
#
# $$p = W_2\,\mathrm{ReLU}(W_1 z), \qquad \text{loss} = f(p).$$
#
# There is no data set: the network must simply *become* a constant function whose value is
# $(3, 0.5)$. `B.BealeTrainer` runs the loop (zero_grad → forward → loss → backward → step) and
# records everything.

# %%
state = B.initial_state(seed=0, d_in=D_IN, hidden=HIDDEN)
fp = B.BealeTrainer("fp", seed=0, d_in=D_IN, hidden=HIDDEN, lr=LR, state=state)
print(fp.model)
for _ in range(STEPS):
    fp.step()
fp_run = fp.result()
print(f"FP net after {STEPS} steps: p = {fp_run.trajectory[-1]}, loss = {fp_run.final_loss:.3g}")

# %% [markdown]
# ## 3. Binarizing the network — and why `sign()` has no gradient
#
# A binary layer replaces the weights and the inputs by their signs, scaled by learnable
# factors (Eq. 2 of the paper, after XNOR-Net):
#
# $$f_b(x) = Q_W(W)^\top Q_x(x), \qquad Q_W(W) = \alpha_w\,\mathrm{sign}(W),\quad
#   Q_x(x) = \alpha_a\,\mathrm{sign}(x).$$
#
# The products of $\pm 1$ values are XNOR gates and the sums are pop-counts, which is what makes
# BNNs fast. The real-valued ("latent") weights $W$ are kept for training only.
#
# **One change to the architecture.** tinybnn's sign has $\mathrm{sign}(0) = +1$, so
# $\mathrm{sign}(\mathrm{ReLU}(h)) = +1$ for *every* $h$: a ReLU followed by a binarizer would
# erase all information. In a BNN the sign itself is the nonlinearity (as in Hubara et al.'s BNN),
# so the binary toy net is $z \to$ BinaryLinear $\to$ BinaryLinear, the second layer binarizing the
# hidden pre-activation $h$. Let us check the claim about ReLU:

# %%
h = tb.tensor(np.array([-2.0, -0.3, 0.0, 0.4, 5.0]))
print("h                =", h.numpy())
print("sign(h)          =", tb.quant.sign(h.data))
print("sign(ReLU(h))    =", tb.quant.sign(tb.functional.relu(h).data), " <- no information left")

# %% [markdown]
# **Why sign() has no gradient.** Its derivative is 0 everywhere except at 0, where it is
# infinite. A finite difference shows it:

# %%
xs = np.linspace(-2, 2, 9)
eps = 1e-3
print("x            :", xs)
print("d sign / dx  :", (tb.quant.sign(xs + eps) - tb.quant.sign(xs - eps)) / (2 * eps))

# %% [markdown]
# If we differentiated sign() honestly, every gradient flowing through it would be zero and
# nothing before it would ever learn. Here is that honest version, written as a tinybnn
# `Function` — a `forward` and a `backward` side by side — and what it does to the gradient:

# %%
class HonestSign(tb.Function):
    """y = sign(x); dy/dx = 0 (almost everywhere): the true derivative."""

    @staticmethod
    def forward(ctx, x):
        return tb.quant.sign(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0.0


x = tb.tensor(np.array([-1.5, -0.2, 0.3, 2.0]), requires_grad=True)
(HonestSign.apply(x) * tb.tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
print("gradient through the honest sign:", x.grad)

# %% [markdown]
# ## 4. Surrogate gradients: STE and Bi-Real's ApproxSign
#
# The way out is to keep $\mathrm{sign}$ in the forward pass and to *pretend*, in the backward
# pass, that it was a smooth function. Two classic choices:
#
# | estimator | forward | backward $\partial y/\partial x$ |
# |---|---|---|
# | clipped STE (BNN, Eq. 4 of the SURGE paper) | sign(x) | $\mathbf{1}[\lvert x\rvert \le 1]$ |
# | ApproxSign (Bi-Real Net) | sign(x) | $\max(0,\ 2 - 2\lvert x\rvert)$ |
#
# Both are in `tinybnn.quant` (`ste_sign`, `approx_sign`). We can read their surrogate
# derivatives off the engine: back-propagate a gradient of ones through each.

# %%
grid = np.linspace(-2, 2, 401)
fig = ti.figure(figsize=(10, 3.4))        # a matplotlib Figure that Jupyter displays
ax1, ax2 = fig.subplots(1, 2)
ax1.plot(grid, tb.quant.sign(grid), color="k")
ax1.set_title("forward: sign(x) (sign(0) = +1)")
for name in ("ste_sign", "approx_sign"):
    x = tb.tensor(grid, requires_grad=True)
    tb.quant.make_quantizer(name)(x).backward(np.ones_like(grid))
    ax2.plot(grid, x.grad, label=name)
ax2.set_title("backward: the surrogate dy/dx")
ax2.legend()
for ax in (ax1, ax2):
    ax.set_xlabel("x")
fig

# %% [markdown]
# Both surrogates are **zero outside $[-1, 1]$**: an input that landed at $|x| > 1$ gets no
# gradient at all ("clipping"). That is a deliberate choice (it keeps latent values from drifting
# off), but it throws information away — the starting point of SURGE.
#
# Let us binarize the toy net with the STE. Its output is $\alpha_{w}\alpha_a$ times a vector of
# *integers* (sums of $\pm 1$ products): the binary net can only place $p$ on a lattice of rays,
# scaled by its learnable $\alpha$'s.

# %%
ste = B.BealeTrainer("ste", seed=0, d_in=D_IN, hidden=HIDDEN, lr=LR, state=state)
print(ste.model)
with tb.no_grad():
    out = ste.model().numpy()[0]
fc2 = ste.model.fc2
scale = fc2.weight_quantizer.alpha.item() * fc2.input_quantizer.alpha.item()
print("output p =", out, "=  alpha_w * alpha_a * ", np.round(out / scale, 3))

# %% [markdown]
# ## 5. SURGE: a second, full-precision branch that only exists in the backward pass
#
# SURGE (Sec. 4 of the paper) wraps each binary layer with a **full-precision twin** of the same
# shape, $f_a(x) = W_a^\top x$, fed with the *real* input $x$, and combines the two as
#
# $$\text{out} = f_b(x) - \mathrm{stopgrad}\big(\lambda f_a(x)\big) + \lambda f_a(x) \qquad (5)$$
#
# - **Forward:** the last two terms cancel, so the output is exactly the binary layer's.
# - **Backward:** stopgrad blocks one of the two copies, so the gradient flows through both paths:
#
# $$\frac{\partial L}{\partial x} = \underbrace{g_b}_{\text{STE, clipped}} + \lambda\,
#   \underbrace{g_a}_{\text{full precision}}, \qquad g_a = \frac{\partial L}{\partial
#   \text{out}}\,W_a. \qquad (6)$$
#
# - **Adaptive Gradient Scaler (AGS):** $\lambda = \eta\,\lVert g_b\rVert / (\lVert g_a\rVert +
#   \epsilon)$, measured at one step and used at the next, starting from $1/\sqrt{|W_a|}$. The
#   compensation is thus η (here 1%) of the binary gradient's size: the STE leads, the twin fills
#   in where the STE clipped. After training, the twin is thrown away (`surge.unwrap`).
#
# Let us check all of this on one `BinaryLinear` layer.

# %%
rng = np.random.default_rng(0)
layer = nn.BinaryLinear(6, 3, rng=rng)
x = tb.tensor(rng.standard_normal((4, 6)).astype(np.float32) * 1.5, requires_grad=True)
plain = layer(x).data.copy()

twin = surge.SurgeLayer(layer, eta=ETA)       # what surge.wrap(model) does to every binary layer
print(twin)
print("initial λ = 1/sqrt(|W_a|) =", twin.lam, "=", 1 / np.sqrt(twin.aux_weight.size))
out = twin(x)
print("forward identical, bit for bit:", out.data.tobytes() == plain.tobytes())

dout = rng.standard_normal(out.shape).astype(np.float32)
out.backward(dout)
xd, wb, wa = x.data, layer.weight.data, twin.aux_weight.data
g_b = (dout @ tb.quant.sign(wb)) * (np.abs(xd) <= 1)     # the STE's gradient (Eq. 4)
g_a = dout @ wa                                          # the twin's gradient
lam0 = twin.stats["lam_used"]
print("dL/dx == g_b + λ·g_a:", np.allclose(x.grad, g_b + lam0 * g_a, atol=1e-6))
print("positions the STE clipped:", int((np.abs(xd) > 1).sum()), "of", xd.size,
      "| zeros left in dL/dx:", int((x.grad == 0).sum()))
print("next λ = η·|g_b|/|g_a| =", twin.lam, "vs", ETA * np.linalg.norm(g_b) / np.linalg.norm(g_a))

# %% [markdown]
# **A detail about exactness.** Written literally, $f_b - c + c$ rounds twice in floating point
# and is not always bit-identical to $f_b$ (e.g. $(10^{-8} - 1) + 1 = 0$ in float32). tinybnn's
# `SurgeLayer` therefore merges the two paths with a tiny `Function` (`surge.DualPathMerge`)
# whose forward *returns $f_b$* and whose backward hands the gradient to both branches; the
# literal form is `surge.compensate(f_b, f_ao, exact=False)`, with the same gradients:

# %%
f_b = tb.tensor(np.array([1e-8, 3.0], dtype=np.float32), requires_grad=True)
f_ao = tb.tensor(np.array([1.0, 1e-3], dtype=np.float32), requires_grad=True)
print("literal Eq. 5:", surge.compensate(f_b, f_ao, exact=False).numpy(), "  f_b:", f_b.numpy())
print("merge Function:", surge.compensate(f_b, f_ao, exact=True).numpy())

# %% [markdown]
# ## 6. The experiment of Appendix C
#
# We now train six methods **from the identical initialisation** (per seed: the same $z$,
# $W_1$, $W_2$, and $W_a$ starts as a copy of $W_b$):
#
# - `fp`: the full-precision net;
# - `ste`, `bireal`: the binary net with the clipped STE or ApproxSign for the activations
#   (the weights always use the STE, with a learnable $\alpha_w$ per layer);
# - `ste+surge`, `bireal+surge`: the same with SURGE on both binary layers ($\eta = 0.01$);
# - `ste+noise`: the paper's control (Fig. G): instead of $\lambda g_a$, add Gaussian noise of
#   exactly the same norm — is SURGE's help "just noise"?
#
# Note that the first layer's input $z$ needs no gradient, so its SURGE branch cannot change
# anything (its λ stays at the initial value); the compensation acts through the hidden layer
# (`fc2`, whose input is the hidden activation), whose λ is plotted.

# %%
t0 = time.perf_counter()
results = B.run_beale(methods=B.DEFAULT_METHODS, seeds=SEEDS, steps=STEPS, hidden=HIDDEN,
                      d_in=D_IN, lr=LR, eta=ETA)
print(f"{len(B.DEFAULT_METHODS) * len(SEEDS)} runs in {time.perf_counter() - t0:.1f} s")
print(results.table("final"))
print()
print(results.table("tail"))
for m, base in (("ste+surge", "ste"), ("bireal+surge", "bireal"), ("ste+noise", "ste")):
    won, n = results.wins(m, base)
    print(f"{m} ends lower than {base} in {won} of {n} seeds")

# %% [markdown]
# ### Figures A and B: trajectories, loss, distance to the optimum, λ
#
# Curves are the median over the seeds with the 25–75% band; the trajectories are those of
# seed 0 (the circle marks the start, the cross the end).

# %%
B.figure_convergence(results, seed=SEEDS[0])

# %%
B.figure_convergence(results, methods=("fp", "ste", "ste+surge"), seed=SEEDS[0])

# %% [markdown]
# ### Figures C and D: how the parameters evolve
#
# The Frobenius norm of all latent binary weights (main branch), of the auxiliary weights, and the
# learnable scales $\alpha_w$ (of the output layer) and $\alpha_a$ (of the hidden activations).

# %%
B.figure_parameters(results)

# %%
B.figure_parameters(results, methods=("fp", "ste", "ste+surge"))

# %% [markdown]
# ### Figure G: compensation or noise?

# %%
B.figure_convergence(results, methods=("fp", "ste", "ste+noise", "ste+surge"), seed=SEEDS[0])

# %% [markdown]
# ### What the numbers say
#
# Read the tables above before the figures: a handful of seeds on a toy problem is a small
# sample, so look at the spread (IQR, min–max) and at the per-seed wins, not only at the medians.
#
# With the defaults of this notebook (5 seeds, 1500 steps; measured when the tutorial was
# written), the final losses were:
#
# | method | median final loss | IQR | min – max |
# |---|---|---|---|
# | fp | 0 | 0 – 0 | 0 – 0 |
# | ste | 0.0852 | 0.0847 – 0.0856 | 0.0837 – 1.45 |
# | ste+surge | 0.0827 | 0.0827 – 0.0827 | 0.0825 – 0.181 |
# | bireal | 0.0895 | 0.0835 – 0.255 | 0.0824 – 0.681 |
# | bireal+surge | 0.189 | 0.0870 – 0.211 | 0.0828 – 0.760 |
# | ste+noise | 0.0838 | 0.0837 – 0.0841 | 0.0837 – 0.0886 |
#
# - The FP net reaches the minimum; every binary net stops near $f \approx 0.08$. That value
#   is not an accident: it is the best point of the ray $p = c\,(16, 2)$, one of the few
#   directions a binary output can take (section 4); the optimum needs the ray $c\,(12, 2)$.
#   The binary nets sit in this discrete local minimum and jitter around it (compare the final
#   loss with the mean over the last 10% of the steps).
# - STE+SURGE ends below STE in all 5 seeds, but only by about 3% (0.0827 against 0.0852: the
#   third digit, a slightly better placed scale α on the same ray), and the noise control ends
#   below STE in 4 of 5 seeds too. Bi-Real+SURGE ends *above* Bi-Real in the median (lower in
#   only 2 of 5 seeds). Averaged over the last 10% of the steps, STE, STE+SURGE and STE+Noise are
#   indistinguishable (0.184–0.185). **On this toy problem, with our choices, SURGE does not give
#   a meaningful improvement**: the differences are far smaller than the gap to the optimum and
#   than the seed-to-seed spread, and compensation does no better than noise of the same size.
#   The paper's claim (lower loss than the base estimator; noise worse and more volatile) is not
#   reproduced in this setting — a toy with one input and 16 hidden units is a very different
#   regime from a ResNet on CIFAR-10, so this says little about SURGE on real networks.
# - Five seeds can mislead: the "5 of 5" above is luck. With 20 seeds
#   (`B.run_beale(seeds=range(20))`, about 1–3 minutes), STE+SURGE ends below STE in 12 of 20
#   seeds and Bi-Real+SURGE below Bi-Real in 8 of 20; the medians of the final loss are
#   0.0839 (STE), 0.0831 (STE+SURGE), 0.0846 (Bi-Real), 0.0858 (Bi-Real+SURGE) and 0.0840
#   (STE+Noise), with overlapping IQRs — no difference beyond chance.
# - λ settles around $10^{-3}$–$10^{-2}$ as AGS intends. But look at what happens when the STE
#   clips *every* hidden unit (common late in training here): $g_b = 0$, so AGS sets
#   $\lambda = \eta\cdot 0 / \lVert g_a\rVert = 0$, and the compensation switches off exactly when
#   it would be needed most. It tends to stay off: with $g_b = 0$ and $\lambda = 0$ the hidden
#   layer gets no gradient and moves only by Adam's leftover momentum (the heatmaps of section 7
#   show the moment it happens). With a batch of many samples $g_b$ is practically never entirely
#   zero, so this is a small-batch effect of Eq. 7 as written.

# %%
for m in ("ste+surge", "bireal+surge"):
    zero = [float(np.mean(r.lam["fc2"] == 0)) for r in results[m]]
    print(f"{m}: fraction of steps with λ(fc2) = 0, per seed:", np.round(zero, 2))
clipped = {m: np.round([float(np.mean(r.grads["hidden"] == 0)) for r in results[m]], 2)
           for m in ("ste", "ste+surge", "ste+noise")}
print("fraction of exactly-zero hidden gradients, per seed:", clipped)

# %% [markdown]
# ## 7. Gradients with and without SURGE
#
# Every run recorded the gradient flowing into the hidden activation at every step
# (`run.grads["hidden"]`, shape (steps, 1, 16)), with a `tinybnn.inspect.GradientRecorder`. For
# a SURGE run it also recorded the binary path's share $g_b$ alone (`"hidden_main"`).
#
# **Heatmaps** (steps × hidden units): white means exactly zero. The STE's clipping leaves large
# white areas; SURGE fills them with $\lambda g_a$ (until λ hits 0).

# %%
seed = SEEDS[0]
maps = {"STE": results.run("ste", seed).grads["hidden"][:, 0],
        "STE+SURGE: g_b only": results.run("ste+surge", seed).grads["hidden_main"][:, 0],
        "STE+SURGE: g_b + λ·g_a": results.run("ste+surge", seed).grads["hidden"][:, 0]}
ti.gradient_heatmaps(maps, title=f"∂L/∂h at every step (seed {seed})", unit_label="hidden unit")

# %% [markdown]
# **Histograms and CDFs** of all these gradient values. The legend counts the exact zeros apart
# (they are the clipped positions); the CDF of |g| jumps at 0 by that fraction.

# %%
values = {k: v.ravel() for k, v in maps.items()}
fig = ti.figure(figsize=(11, 3.8))
ax1, ax2 = fig.subplots(1, 2)
ti.gradient_histograms(values, ax=ax1)
ti.gradient_cdfs(values, ax=ax2)
fig

# %% [markdown]
# **Cosine similarity of the main and auxiliary weight gradients** (the paper's Fig. F, there
# 0.8–0.9 on ResNet-20/CIFAR-10): how aligned are $\partial L/\partial W_b$ (STE) and
# $\partial L/\partial W_a$ in the hidden layer?

# %%
series = {f"seed {r.seed}": r.cos_w["fc2"] for r in results["ste+surge"]}
ti.curves(series, ylabel="cos(∂L/∂W_b, ∂L/∂W_a)", title="STE+SURGE, layer fc2")

# %% [markdown]
# And the λ of each layer in one run: the first layer's stays at $1/\sqrt{|W_a|}$ because its
# input needs no gradient.

# %%
run = results.run("ste+surge", seed)
ti.lambda_curves({layer: np.where(lam > 0, lam, np.nan) for layer, lam in run.lam.items()},
                 title="λ per layer (zeros not drawn on the log axis)")

# %% [markdown]
# ## 8. Inspect any gradient of any step
#
# Two ways. **From the records:** every run kept the hidden-activation gradient and the weight
# gradients of every step. Pick a method, a seed and a step:

# %%
method, seed, step = "ste+surge", SEEDS[0], min(10, STEPS - 1)
run = results.run(method, seed)
print(f"{method}, seed {seed}, step {step}: loss {run.loss[step]:.4f}, "
      f"λ(fc2) {run.lam['fc2'][step]:.4g}")
print("∂L/∂h (total)         :", np.round(run.grad("hidden", step)[0], 4))
print("∂L/∂h (binary path)   :", np.round(run.grad("hidden_main", step)[0], 4))
print("∂L/∂W2 (latent, STE)  :\n", np.round(run.grad("fc2.weight", step), 4))
print("fraction zeroed by clipping:", ti.fraction_zeroed(run.grad("hidden_main", step)))

# %% [markdown]
# **Live:** train a model to any step, then run one more forward pass by hand, keep the
# gradient of every intermediate tensor (`retain_grad()`), and walk the graph that the engine
# recorded (`grad_fn`):

# %%
trainer = B.BealeTrainer("ste+surge", seed=SEEDS[0], d_in=D_IN, hidden=HIDDEN, lr=LR)
for _ in range(step):
    trainer.step()
model = trainer.model
z = tb.Tensor(model.z)
h = model.fc1(z).retain_grad()          # hidden pre-activation
p = model.fc2(h).retain_grad()          # output point
loss = B.beale(p)
loss.backward()
print("p =", p.numpy(), " loss =", loss.item())
print("∂L/∂p =", p.grad)
print("∂L/∂h =", np.round(h.grad, 4))
print("grad of α_a:", model.fc2.layer.input_quantizer.alpha.grad)
node, depth = p.grad_fn, 0
while node is not None and depth < 6:   # the last operations that made p, newest first
    print("  " * depth + repr(node))
    parents = [t for t in node.parents if t.grad_fn is not None]
    node, depth = (parents[0].grad_fn if parents else None), depth + 1

# %% [markdown]
# Finally, the SURGE statistics of each layer at this point, and the plain binary model that an
# export would keep (`surge.unwrap` drops the twins; the outputs do not change):

# %%
for name, stats in surge.layer_stats(model).items():
    print(name, {k: (round(v, 5) if isinstance(v, float) else v) for k, v in stats.items()})
with tb.no_grad():
    before = model().numpy()
    plain_model = surge.unwrap(model)
    print("after unwrap:", [n for n, _ in plain_model.named_parameters()])
    print("same output:", np.array_equal(before, plain_model().numpy()))

# %%
print(f"notebook ran in {time.perf_counter() - NOTEBOOK_START:.1f} s")

# %% [markdown]
# ## Where next
#
# - Change `ETA`, the scope (`B.run_beale(..., scope="clipped")`), a fixed λ
#   (`fixed_lambda=0.05`), the width, or the learning rate, and see whether the conclusion holds.
# - Try another activation estimator as a base: any name of `tinybnn.quant.available("activation")`
#   works, e.g. `B.run_beale(methods=("swish_sign", "swish_sign+surge"))`.
# - The next tutorials train binary MLPs and ResNets on real data, where `surge.wrap(model)` is a
#   one-line change.
