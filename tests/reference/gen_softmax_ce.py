"""Reference for tests/test_softmax.c: F.cross_entropy(ignore_index=255) on
random logits (2, 5, 3, 7) with some ignored pixels (loss and d loss / d logits),
and log_softmax / softmax over the channels of the same logits.
Run: /usr/bin/python3 tests/reference/gen_softmax_ce.py"""
import os

import torch
import torch.nn.functional as F

import refio

torch.manual_seed(7)
n, c, h, w = 2, 5, 3, 7
logits = (torch.randn(n, c, h, w) * 3.0).requires_grad_(True)
labels = torch.randint(0, c, (n, h, w))
labels[torch.rand(n, h, w) < 0.3] = 255
loss = F.cross_entropy(logits, labels, ignore_index=255)
loss.backward()

here = os.path.dirname(os.path.abspath(__file__))
refio.write(os.path.join(here, "softmax_ce.bin"), {
    "logits": logits,
    "labels": labels.float().reshape(n, 1, h, w),
    "loss": loss.reshape(1),
    "count": (labels != 255).sum().float().reshape(1),
    "grad": logits.grad,
    "softmax": F.softmax(logits, dim=1),
    "log_softmax": F.log_softmax(logits, dim=1),
})
print("loss", loss.item(), "valid", int((labels != 255).sum()))
