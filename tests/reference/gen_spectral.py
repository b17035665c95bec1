"""Reference for tests/test_spectral.c: torch.nn.utils.spectral_norm (one
power iteration per training forward, eps 1e-12) on two conv weights.
Per case "<case>/...": w (the weight, W = w.reshape(out, -1)), u0 and v0
(the buffers before the first forward), after the first forward u1, v1,
sigma1, wsn1 and dw (d/dw of sum(w_sn * dwsn) for the given dwsn), after
a second forward u2, v2, wsn2.
Run: /usr/bin/python3 tests/reference/gen_spectral.py"""
import os

import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm

import refio

torch.manual_seed(11)
out = {}
for name, (cout, cin, k) in {"small": (5, 3, 3), "conv": (12, 7, 3)}.items():
    m = spectral_norm(nn.Conv2d(cin, cout, k, bias=False))
    m.train()
    out[name + "/w"] = m.weight_orig.detach().clone()
    out[name + "/u0"] = m.weight_u.clone()
    out[name + "/v0"] = m.weight_v.clone()
    x = torch.randn(1, cin, k + 2, k + 2)
    m(x)  # the forward pre-hook runs one power iteration
    wsn = m.weight
    dwsn = torch.randn_like(wsn)
    (wsn * dwsn).sum().backward()
    u1, v1 = m.weight_u.clone(), m.weight_v.clone()
    out[name + "/u1"] = u1
    out[name + "/v1"] = v1
    out[name + "/sigma1"] = torch.dot(u1, m.weight_orig.detach().reshape(cout, -1) @ v1).reshape(1)
    out[name + "/wsn1"] = wsn.detach().clone()
    out[name + "/dwsn"] = dwsn
    out[name + "/dw"] = m.weight_orig.grad.clone()
    m(x)
    out[name + "/u2"] = m.weight_u.clone()
    out[name + "/v2"] = m.weight_v.clone()
    out[name + "/wsn2"] = m.weight.detach().clone()

here = os.path.dirname(os.path.abspath(__file__))
refio.write(os.path.join(here, "spectral.bin"), out)
