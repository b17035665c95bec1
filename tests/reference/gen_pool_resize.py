"""PyTorch references for tests/test_pool.c: max pool with ceil_mode (ties
included, to pin down the first-maximum rule), adaptive average pooling and
bilinear resize with align_corners=True, forward and backward.

Run with Debian's torch:  /usr/bin/python3 tests/reference/gen_pool_resize.py
Writes tests/reference/pool_resize.bin next to this script."""
import os

import torch
import torch.nn.functional as F

import refio

torch.manual_seed(1234)
out = {}


def record(prefix, fn, x):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    out[prefix + "_x"] = x
    out[prefix + "_y"] = y
    out[prefix + "_dy"] = dy
    out[prefix + "_dx"] = x.grad


# Max pool: (name, shape, kernel, stride, padding, ceil_mode). k3s3p1 and
# k2s2p1 on 7x5 hit the rule that drops a last window starting in the right
# padding.
for name, shape, k, s, p, ceil in [
    ("mp_k3s2p1", (1, 3, 7, 5), 3, 2, 1, True),
    ("mp_k2s2", (1, 3, 7, 5), 2, 2, 0, True),
    ("mp_k3s3", (2, 5, 13, 9), 3, 3, 0, True),
    ("mp_k3s3p1", (1, 3, 7, 5), 3, 3, 1, True),
    ("mp_k2s2p1", (1, 3, 7, 5), 2, 2, 1, True),
    ("mp_k2s2_floor", (1, 3, 7, 5), 2, 2, 0, False),
]:
    record(name, lambda t: F.max_pool2d(t, k, s, p, ceil_mode=ceil), torch.randn(shape))
# Small integers give many ties: PyTorch routes to the first maximum.
record("mp_ties", lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
       torch.randint(0, 3, (1, 2, 7, 5)).float())

for shape, bins in [((1, 3, 7, 5), (1, 2, 3, 6)), ((1, 2, 4, 4), (6,))]:
    for b in bins:
        name = "ap_%dx%d_%d" % (shape[2], shape[3], b)
        record(name, lambda t: F.adaptive_avg_pool2d(t, b), torch.randn(shape))

for name, shape, size in [
    ("rs_up", (1, 1, 7, 5), (29, 37)),
    ("rs_down", (1, 2, 33, 17), (5, 3)),
    ("rs_same", (1, 2, 7, 5), (7, 5)),
    ("rs_one", (1, 2, 7, 5), (1, 1)),
]:
    record(name, lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=True),
           torch.randn(shape))

refio.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool_resize.bin"), out)
