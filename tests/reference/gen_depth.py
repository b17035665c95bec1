"""Reference values for tests/test_loss_depth.c and tests/test_eval_depth.c.

Run: /usr/bin/python3 tests/reference/gen_depth.py  (Debian's torch)
Writes tests/reference/depth.bin.

Depth as classification over C bins equally spaced in log10 depth between
d_min and d_max (VNL): width w = (log10 d_max - log10 d_min) / C,
centre_i = log10 d_min + w (i + 0.5). Written here from that definition in
float64, independently of skd-cl:
- the task loss: target bin j = floor((log10 d - log10 d_min) / w) clamped to
  [0, C-1]; soft target exp(-0.2 (i - j)^2), rows normalised; cross-entropy
  with log_softmax, mean over pixels whose depth is > 0; gradient by autograd.
- bins -> depth: 10^(sum softmax_i centre_i); the gradient of
  sum(depth * ddepth) by autograd.
- depth metrics over pixels with ground truth > 0 (prediction clamped to
  >= 1e-3 m): abs rel, sq rel, RMS, RMS(log) (natural log), log10,
  delta < 1.25, 1.25^2, 1.25^3.

Per case <k>: <k>.config = [bins, d_min, d_max], <k>.logits, <k>.depth,
<k>.loss (1), <k>.grad, <k>.ddepth, <k>.pred (bins -> depth), <k>.pred_grad.
Metrics: m<k>.pred, m<k>.gt, m<k>.metrics (8 values, in the order above).
Also depth16.png: a 7 x 5 16-bit grey PNG written by Pillow, its values (mm)
as png16.values (5, 7)."""
import math
import os

import numpy as np
import torch
from PIL import Image
import torch.nn.functional as F

import refio


def depth_loss(z, depth, bins, dmin, dmax):
    n, c, h, w = z.shape
    lo = math.log10(dmin)
    width = (math.log10(dmax) - lo) / bins
    valid = depth > 0
    safe = torch.where(valid, depth, torch.ones_like(depth))
    j = torch.floor((torch.log10(safe) - lo) / width).clamp(0, bins - 1)  # (n, 1, h, w)
    i = torch.arange(bins, dtype=z.dtype).view(1, bins, 1, 1)
    q = torch.exp(-0.2 * (i - j) ** 2)
    q = q / q.sum(dim=1, keepdim=True)
    ce = -(q * F.log_softmax(z, dim=1)).sum(dim=1, keepdim=True)
    count = int(valid.sum())
    if count == 0:
        return (ce * 0).sum()
    return (ce * valid.to(z.dtype)).sum() / count


def from_bins(z, bins, dmin, dmax):
    lo = math.log10(dmin)
    width = (math.log10(dmax) - lo) / bins
    centres = lo + width * (torch.arange(bins, dtype=z.dtype) + 0.5)
    e = (F.softmax(z, dim=1) * centres.view(1, bins, 1, 1)).sum(dim=1, keepdim=True)
    return torch.pow(10.0, e)


def metrics(pred, gt):
    v = gt > 0
    d = pred[v].clamp(min=1e-3)
    g = gt[v]
    ratio = torch.maximum(d / g, g / d)
    return [
        float(((d - g).abs() / g).mean()),
        float(((d - g) ** 2 / g).mean()),
        float(((d - g) ** 2).mean().sqrt()),
        float(((d.log() - g.log()) ** 2).mean().sqrt()),
        float((d.log10() - g.log10()).abs().mean()),
        float((ratio < 1.25).double().mean()),
        float((ratio < 1.25 ** 2).double().mean()),
        float((ratio < 1.25 ** 3).double().mean()),
    ]


def random_depth(g, shape, bins, dmin, dmax, invalid, outside):
    """Depths inside bins (0.1 .. 0.9 of a bin from its edges, so float32
    and float64 agree on the bin), some 0 (missing), some out of range."""
    lo = math.log10(dmin)
    width = (math.log10(dmax) - lo) / bins
    j = torch.randint(0, bins, shape, generator=g).double()
    u = 0.1 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64)
    d = torch.pow(10.0, lo + width * (j + u))
    r = torch.rand(shape, generator=g, dtype=torch.float64)
    d[r < outside] = dmax * 1.7
    d[(r >= outside) & (r < 2 * outside)] = dmin * 0.4
    d[torch.rand(shape, generator=g, dtype=torch.float64) < invalid] = 0.0
    return d.float()


def make_case(arrays, key, shape, bins, dmin, dmax, invalid, outside, seed):
    g = torch.Generator().manual_seed(seed)
    n, _, h, w = shape
    z32 = (torch.randn(shape, generator=g) * 2.0).float()
    d32 = random_depth(g, (n, 1, h, w), bins, dmin, dmax, invalid, outside)
    dd32 = torch.randn((n, 1, h, w), generator=g).float()
    arrays[key + ".config"] = [bins, dmin, dmax]
    arrays[key + ".logits"] = z32
    arrays[key + ".depth"] = d32
    z = z32.double().requires_grad_(True)
    loss = depth_loss(z, d32.double(), bins, dmin, dmax)
    loss.backward()
    arrays[key + ".loss"] = [float(loss)]
    arrays[key + ".grad"] = z.grad
    z = z32.double().requires_grad_(True)
    pred = from_bins(z, bins, dmin, dmax)
    (pred * dd32.double()).sum().backward()
    arrays[key + ".ddepth"] = dd32
    arrays[key + ".pred"] = pred
    arrays[key + ".pred_grad"] = z.grad
    print("%s loss %.6f pred [%.3f, %.3f]" % (key, float(loss), float(pred.min()), float(pred.max())))


def make_metrics(arrays, key, shape, seed):
    g = torch.Generator().manual_seed(seed)
    gt = torch.exp(torch.rand(shape, generator=g, dtype=torch.float64) * 2.5).float()  # 1 .. 12 m
    gt[torch.rand(shape, generator=g) < 0.2] = 0.0
    noise = torch.exp(torch.randn(shape, generator=g, dtype=torch.float64) * 0.25)
    pred = (gt.double() * noise + 0.05).float()
    pred.view(-1)[:2] = torch.tensor([0.0, -1.0])  # clamped to 1e-3
    arrays[key + ".pred"] = pred
    arrays[key + ".gt"] = gt
    m = metrics(pred.double(), gt.double())
    arrays[key + ".metrics"] = m
    print(key, " ".join("%.6f" % x for x in m))


def main():
    arrays = {}
    make_case(arrays, "a", (2, 60, 5, 7), 60, 0.5, 10.0, 0.2, 0.05, seed=1)
    make_case(arrays, "b", (1, 150, 3, 4), 150, 0.1, 10.0, 0.3, 0.0, seed=2)
    make_case(arrays, "c", (3, 5, 4, 3), 5, 1.0, 8.0, 0.1, 0.15, seed=3)
    make_metrics(arrays, "m1", (2, 1, 9, 11), seed=4)
    make_metrics(arrays, "m2", (1, 1, 1, 40), seed=5)
    here = os.path.dirname(os.path.abspath(__file__))
    values = (np.arange(35, dtype=np.uint32).reshape(5, 7) * 1871 + 3) % 65536
    values[0, 0], values[4, 6], values[2, 3] = 0, 65535, 256
    Image.fromarray(values.astype(np.uint16)).save(os.path.join(here, "depth16.png"))
    arrays["png16.values"] = values.astype(np.float64)
    out = os.path.join(here, "depth.bin")
    refio.write(out, arrays)
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
