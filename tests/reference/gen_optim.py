"""Reference for tests/test_optim.c: a few steps of torch.optim.SGD and
torch.optim.Adam on the same two parameters and gradients, one config per
prefix. Per config: "<cfg>/hyper" (see HYPER below), then for each step k
and parameter i "<cfg>/p<i>/after<k>", and the final optimiser state
"<cfg>/p<i>/state1" (momentum buffer / exp_avg), "<cfg>/p<i>/state2" (exp_avg_sq).
Shared: "p<i>/init", "p<i>/grad<k>". The learning rate of step k (0-based)
is poly(lr, k, max_it, power) when power > 0.
Run: /usr/bin/python3 tests/reference/gen_optim.py"""
import os

import torch

import refio

STEPS = 4
SHAPES = [(1, 3, 7, 5), (1, 1, 1, 19)]
# name: (kind, lr, a, b, c, weight_decay, nesterov, poly_power, max_it)
#   sgd:  a = momentum, b = dampening, c unused
#   adam: a = beta1, b = beta2, c = eps
CONFIGS = {
    "sgd": ("sgd", 0.01, 0.9, 0.0, 0.0, 5e-4, 0, 0.0, 0),
    "sgd_poly": ("sgd", 0.02, 0.9, 0.0, 0.0, 5e-4, 0, 0.9, 6),
    "sgd_nesterov": ("sgd", 0.05, 0.9, 0.0, 0.0, 1e-4, 1, 0.0, 0),
    "sgd_dampening": ("sgd", 0.02, 0.5, 0.3, 0.0, 0.0, 0, 0.0, 0),
    "sgd_plain": ("sgd", 0.1, 0.0, 0.0, 0.0, 1e-3, 0, 0.0, 0),
    "adam": ("adam", 1e-3, 0.9, 0.99, 1e-8, 0.0, 0, 0.0, 0),
    "adam_wd": ("adam", 2e-3, 0.5, 0.999, 1e-6, 1e-2, 0, 0.9, 10),
}


def poly(lr, it, max_it, power):
    return lr * (1 - it / max_it) ** power if power > 0 else lr


torch.manual_seed(3)
init = [torch.randn(s) for s in SHAPES]
grads = [[torch.randn(s) * 0.5 for s in SHAPES] for _ in range(STEPS)]
out = {}
for i, p in enumerate(init):
    out["p%d/init" % i] = p
    for k in range(STEPS):
        out["p%d/grad%d" % (i, k)] = grads[k][i]

for name, (kind, lr, a, b, c, wd, nesterov, power, max_it) in CONFIGS.items():
    params = [p.clone().requires_grad_(True) for p in init]
    if kind == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=a, dampening=b, weight_decay=wd, nesterov=bool(nesterov))
    else:
        opt = torch.optim.Adam(params, lr=lr, betas=(a, b), eps=c, weight_decay=wd)
    out[name + "/hyper"] = [0.0 if kind == "sgd" else 1.0, lr, a, b, c, wd, nesterov, power, max_it]
    for k in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = poly(lr, k, max_it, power)
        for i, p in enumerate(params):
            p.grad = grads[k][i].clone()
        opt.step()
        for i, p in enumerate(params):
            out["%s/p%d/after%d" % (name, i, k)] = p.detach().clone()  # p changes in place
    for i, p in enumerate(params):
        st = opt.state[p]
        if kind == "sgd" and a != 0:
            out["%s/p%d/state1" % (name, i)] = st["momentum_buffer"]
        if kind == "adam":
            out["%s/p%d/state1" % (name, i)] = st["exp_avg"]
            out["%s/p%d/state2" % (name, i)] = st["exp_avg_sq"]

here = os.path.dirname(os.path.abspath(__file__))
refio.write(os.path.join(here, "optim.bin"), out)
