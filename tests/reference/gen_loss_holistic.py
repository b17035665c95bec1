"""PyTorch references for tests/test_discriminator.c and
tests/test_loss_holistic.c: the SAGAN-style discriminator of the holistic
loss (METHOD.md section 4) and its WGAN-GP / hinge losses.

Run with Debian's torch:  /usr/bin/python3 tests/reference/gen_loss_holistic.py
Writes tests/reference/loss_holistic.bin next to this script.

The network (in torch_models.py, shared with benchmarks/torch_step.py) is
written from the method's description (not copied):
preprocess (BatchNorm2d(C) in train mode | tanh | 2 (x / 255 - 0.5)),
l1..l4 spectral-normalised Conv(4, 2, 1) + LeakyReLU(0.1), self-attention
after l3 and l4, last Conv(8d -> 1) with the kernel min(4, h4) x min(4, w4)
(skd's depth rule), score = mean over the last conv's output positions.
Spectral norm is torch.nn.utils.spectral_norm (one power iteration per
training forward, u and v constant for autograd), which is what the authors'
SpectralNorm computes. Parameter names are written in the authors' naming
(l1.0.module.weight_bar, .bias, .weight_u, .weight_v; attn1.query_conv.weight;
preprocess_additional.*; last.0.*), which is also what skd uses.

Everything is computed in float64 from float32 weights and inputs, so the
stored values are exact to float32 rounding; the penalty's parameter
gradient is PyTorch's double backward (autograd.grad(create_graph=True)).

Inputs are not stored: they come from formula_input() (a splitmix64 hash of
the element index, mapped to [lo, hi) in double and rounded to float32),
which tests/holistic_fixture.h reproduces bit for bit.

Config "a": N=2, C=5, 16x32 logits, d=2 (attention on 8 and 16 channels,
P = 2x4 = 8 and 1x2 = 2; last kernel 1x2), BatchNorm preprocessing.
  a.<param>                       weights and buffers (the initial state)
  a.g.loss, a.g.dq, a.g.grads.<p> G term: L_ho = -mean D(S); dq = d(lambda_d L_ho)/dS;
                                  grads = d(lambda_d L_ho)/dparams (what the G pass must NOT keep)
  a.d.score_t, a.d.score_s        D step: D(T), D(S) (first and second forward)
  a.d.gnorm, a.d.terms            ||grad_x D(x_hat)_n||, [L_D, real, fake, penalty]
  a.d.grads.<p>, a.d.gp.<p>       dL_D/dparams, and the penalty term's part alone
  a.d.after.<buffer>              u, v, BN running stats after the step
  a.h.last_bias, a.h.terms        hinge D step with last.0.bias shifted so that one
                                  real margin is inactive: [L_D, real, fake]
  a.mix                           e per sample
Configs "t" (tanh), "s" (x / 255 scaling), "c" (conditional: BN over
concat(softmax(logits), image resized), C + 3 = 8 channels), all N = 1:
  <k>.score, <k>.dq (G term as above); c.<param> for l1 and BN (the rest as a),
  c.image (1, 3, 20, 36) is formula_input too."""
import os

import numpy as np
import torch
import torch.nn.functional as F

import refio
from torch_models import Discriminator

torch.set_default_dtype(torch.float64)
MASK64 = (1 << 64) - 1
LAMBDA_D = 0.1
LAMBDA_GP = 10.0


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def formula_input(seed, shape, lo, hi):
    """Element i: lo + (hi - lo) * ((splitmix64(seed * 2^32 + i) >> 11) * 2^-53), as float32."""
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        u = (splitmix64(((seed << 32) + i) & MASK64) >> 11) * (2.0 ** -53)
        out[i] = np.float32(lo + (hi - lo) * u)
    return torch.from_numpy(out.reshape(shape)).double()


def skd_name(torch_name):
    """torch.nn.utils.spectral_norm names -> the authors' SpectralNorm names."""
    for layer in ("l1", "l2", "l3", "l4"):
        p = layer + ".0."
        if torch_name.startswith(p):
            rest = torch_name[len(p):]
            return p + "module." + {"weight_orig": "weight_bar"}.get(rest, rest)
    return torch_name


def state(model):
    """Every parameter and buffer under skd's names (num_batches_tracked left out)."""
    out = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if not name.endswith("num_batches_tracked"):
            out[skd_name(name)] = t
    return out


def init_weights(model, g):
    """float32-representable random weights; u, v random unit vectors; gammas
    non-zero (with gamma = 0 the attention's q, k, v get no gradient)."""
    with torch.no_grad():
        for name, t in state(model).items():
            if name.endswith("gamma"):
                t.fill_(0.7 if name.startswith("attn1") else -0.5)
            elif name.endswith("weight_u") or name.endswith("weight_v"):
                r = torch.randn(t.shape, generator=g)
                t.copy_(r / r.norm())
            elif name.endswith("running_mean"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.2 - 0.1)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.startswith("preprocess_additional.weight"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.startswith("preprocess_additional.bias"):
                t.copy_(torch.rand(t.shape, generator=g) - 0.5)
            else:
                fan_in = t[0].numel() if t.dim() > 1 else None
                if fan_in is None:  # a bias: its conv's fan-in
                    fan_in = 16
                bound = 1.0 / np.sqrt(fan_in)
                if "query_conv.weight" in name or "key_conv.weight" in name:
                    bound *= 3.0  # energies of order 1, so the softmax is not flat
                if name == "last.0.weight":
                    bound *= 30.0  # scores that differ between samples (the SN layers shrink them)
                t.copy_((torch.rand(t.shape, generator=g) * 2 - 1) * bound)
            t.copy_(t.float().double())


def params(model):
    return [(skd_name(n), p) for n, p in model.named_parameters()]


def load(model, weights):
    with torch.no_grad():
        for name, t in state(model).items():
            t.copy_(weights[name])


def snapshot(model):
    return {k: v.detach().clone() for k, v in state(model).items()}


out = {}
g = torch.Generator().manual_seed(20190601)

# ---- config a: BN preprocessing, N = 2, C = 5, 16 x 32, d = 2 -------------
N, C, H, W, D = 2, 5, 16, 32, 2
model = Discriminator(C, D, 1, H, W)
init_weights(model, g)
model.train()
w0 = snapshot(model)
for k, v in w0.items():
    out["a." + k] = v
T = formula_input(1, (N, C, H, W), -4.0, 4.0)
S = formula_input(2, (N, C, H, W), -3.0, 5.0)
mix = torch.tensor([0.3125, 0.8125])  # exact in float32
out["a.mix"] = mix

# G term: L_ho = -mean D(S), gradient into S only (times lambda_d).
s = S.clone().requires_grad_(True)
l_ho = -model(s).mean()
names = [n for n, _ in params(model)]
grads = torch.autograd.grad(LAMBDA_D * l_ho, [s] + [p for _, p in params(model)])
out["a.g.loss"] = l_ho.reshape(1)
out["a.g.dq"] = grads[0]
for n, gr in zip(names, grads[1:]):
    out["a.g.grads." + n] = gr

# D step (wgan-gp), from the initial state again.
load(model, w0)
d_t = model(T)
d_s = model(S)
real, fake = d_t.mean(), d_s.mean()
x_hat = (mix.reshape(N, 1, 1, 1) * T + (1 - mix.reshape(N, 1, 1, 1)) * S).requires_grad_(True)
d_x = model(x_hat)
gx = torch.autograd.grad(d_x, x_hat, grad_outputs=torch.ones_like(d_x), create_graph=True)[0]
gnorm = gx.reshape(N, -1).pow(2).sum(1).sqrt()
penalty = ((gnorm - 1) ** 2).mean()
loss_d = LAMBDA_D * (fake - real) + LAMBDA_D * LAMBDA_GP * penalty
plist = [p for _, p in params(model)]
g_gp = torch.autograd.grad(LAMBDA_D * LAMBDA_GP * penalty, plist, retain_graph=True, allow_unused=True)
g_gp = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(plist, g_gp)]  # last.0.bias
g_all = torch.autograd.grad(loss_d, plist)
out["a.d.score_t"] = d_t.reshape(N)
out["a.d.score_s"] = d_s.reshape(N)
out["a.d.gnorm"] = gnorm
out["a.d.terms"] = torch.stack([loss_d, real, fake, penalty])
for n, a, b in zip(names, g_all, g_gp):
    out["a.d.grads." + n] = a
    out["a.d.gp." + n] = b
for k, v in state(model).items():
    if k.endswith(("weight_u", "weight_v", "running_mean", "running_var")):
        out["a.d.after." + k] = v.detach().clone()  # the live buffer is overwritten by load() below
print("a: scores T", d_t.reshape(-1).tolist(), "S", d_s.reshape(-1).tolist(), "gnorm", gnorm.tolist())

# Hinge D step: last bias shifted so that D(T_0), D(T_1) straddle 1.
load(model, w0)
with torch.no_grad():
    base = model(T).reshape(-1)
shift = 1.0 - float(base.mean())
bias = float(np.float32(w0["last.0.bias"].item() + shift))
load(model, w0)
with torch.no_grad():
    model.last[0].bias.fill_(bias)
    h_t = model(T)
    h_s = model(S)
h_real, h_fake = h_t.mean(), h_s.mean()
h_loss = LAMBDA_D * (F.relu(1 - h_t).mean() + F.relu(1 + h_s).mean())
out["a.h.last_bias"] = torch.tensor([bias])
out["a.h.terms"] = torch.stack([h_loss, h_real, h_fake])
print("hinge: D(T)", h_t.reshape(-1).tolist(), "D(S)", h_s.reshape(-1).tolist())
assert min(abs(float(v) - 1.0) for v in h_t.reshape(-1)) > 0.01, "hinge margins too close to the kink"


# ---- configs t, s, c: one sample each, the G term -------------------------
def g_term(key, m, x, image=None):
    x = x.clone().requires_grad_(True)
    score = m(x, image)
    l_ho = -score.mean()
    (dq,) = torch.autograd.grad(LAMBDA_D * l_ho, x)
    out[key + ".score"] = score.reshape(-1)
    out[key + ".dq"] = dq


x1 = formula_input(3, (1, C, H, W), -4.0, 4.0)
for key, mode, x in (("t", 2, x1), ("s", 3, x1 * 40.0 + 128.0)):
    m = Discriminator(C, D, mode, H, W)
    m.train()
    load(m, {k: v for k, v in w0.items() if not k.startswith("preprocess")})
    g_term(key, m, x)

mc = Discriminator(C + 3, D, 1, H, W)
mc.train()
init_weights(mc, g)
wc = snapshot(mc)
load(mc, {k: (wc[k] if k.startswith(("preprocess", "l1.")) else w0[k]) for k in wc})
for k, v in wc.items():
    if k.startswith(("preprocess", "l1.")):
        out["c." + k] = v
image = formula_input(4, (1, 3, 20, 36), 0.0, 255.0)
g_term("c", mc, x1, image)

refio.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "loss_holistic.bin"), out)
print("arrays:", len(out), "floats:", sum(int(np.prod(v.shape)) for v in out.values()))
