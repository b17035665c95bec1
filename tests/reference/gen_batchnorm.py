"""Reference for tests/test_batchnorm.c: nn.BatchNorm2d (eps 1e-5, momentum 0.1)
on a 2x5x4x3 input: train-mode output, running statistics after one step and
the input/weight/bias gradients for a given dy; the same with a ReLU after the
BN; and eval-mode output and gradients with the updated running statistics.

Run with Debian's torch: /usr/bin/python3 tests/reference/gen_batchnorm.py"""
import os

import torch

import refio

torch.manual_seed(7)
N, C, H, W = 2, 5, 4, 3
x = (torch.randn(N, C, H, W) * 2.0 + 0.5).double()
gamma = torch.rand(C) + 0.5
beta = torch.randn(C) * 0.3
running_mean = torch.randn(C) * 0.2
running_var = torch.rand(C) + 0.5
dy = torch.randn(N, C, H, W)


def layer():
    bn = torch.nn.BatchNorm2d(C, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
    return bn


def run(bn, relu, tag, out):
    xi = x.clone().requires_grad_(True)
    y = bn(xi)
    if relu:
        y = torch.relu(y)
    y.backward(dy.double())
    out["y_" + tag] = y
    out["dx_" + tag] = xi.grad
    out["dgamma_" + tag] = bn.weight.grad
    out["dbeta_" + tag] = bn.bias.grad


out = {"x": x, "gamma": gamma, "beta": beta, "running_mean": running_mean,
       "running_var": running_var, "dy": dy}
bn = layer()
run(bn.train(), False, "train", out)
out["running_mean_after"] = bn.running_mean
out["running_var_after"] = bn.running_var
run(layer().train(), True, "train_relu", out)
bn.weight.grad = None
bn.bias.grad = None
run(bn.eval(), False, "eval", out)

here = os.path.dirname(os.path.abspath(__file__))
refio.write(os.path.join(here, "batchnorm.bin"), out)
