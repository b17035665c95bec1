"""Reference values for tests/test_loss_pixel.c (pixel-wise distillation).

Run: /usr/bin/python3 tests/reference/gen_loss_pixel.py  (Debian's torch)
Writes tests/reference/loss_pixel.bin.

authors_criterion() is the reference code's CriterionPixelWise (teacher
detached, softmax over the channels, sum over the whole batch / (W * H)).
pixel_loss() is skd's generalisation: temperature tau (both softmaxes at
z / tau, loss times tau^2), ignore-label masking (ignored pixels drop out of
the sum) and norm "reference" (/ H'W', also with masking) or "mean" (/ number
of valid pixels, at least 1). Values in float64 from float32 inputs; the
gradient w.r.t. the student logits by autograd; the KL diagnostic by
F.kl_div, independently of the cross-entropy form.

Per case <k>: <k>.student, <k>.teacher, [<k>.labels (N,1,H,W)], and per
variant <k>.<v>.loss, <k>.<v>.kl (1 element), <k>.<v>.grad (dL/dzS), with
<k>.<v>.config = [tau, mask_ignore, norm (0 reference, 1 mean)]."""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import refio

IGNORE = 255


class CriterionPixelWise(nn.Module):
    """The authors' criterion (structure_knowledge_distillation, utils/criterion.py),
    for one logit tensor instead of their list of outputs."""

    def forward(self, preds_S, preds_T):
        preds_T = preds_T.detach()
        assert preds_S.shape == preds_T.shape
        N, C, W, H = preds_S.shape
        softmax_pred_T = F.softmax(preds_T.permute(0, 2, 3, 1).contiguous().view(-1, C), dim=1)
        logsoftmax = nn.LogSoftmax(dim=1)
        loss = torch.sum(-softmax_pred_T * logsoftmax(preds_S.permute(0, 2, 3, 1).contiguous().view(-1, C))) / W / H
        return loss


def pixel_loss(s, t, labels, tau, mask, norm):
    n, c, h, w = s.shape
    t = t.detach()
    log_ps = F.log_softmax(s / tau, dim=1)
    log_pt = F.log_softmax(t / tau, dim=1)
    valid = torch.ones(n, 1, h, w, dtype=s.dtype)
    if mask:
        valid = (labels != IGNORE).to(s.dtype)
    ce = (-(log_pt.exp()) * log_ps * valid).sum()
    kl = (F.kl_div(log_ps, log_pt.exp(), reduction="none") * valid).sum()
    divisor = float(h * w) if norm == "reference" else max(float(valid.sum()), 1.0)
    return tau * tau * ce / divisor, tau * tau * kl / divisor


def make_case(arrays, key, shape, variants, ignore_fraction=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    s32 = (torch.randn(shape, generator=g) * 3.0).float()
    t32 = (torch.randn(shape, generator=g) * 3.0).float()
    arrays[key + ".student"] = s32
    arrays[key + ".teacher"] = t32
    labels = torch.randint(0, c, (n, 1, h, w), generator=g).double()
    if ignore_fraction > 0:
        drop = torch.rand((n, 1, h, w), generator=g) < ignore_fraction
        labels[drop] = IGNORE
        arrays[key + ".labels"] = labels
    for name, tau, mask, norm in variants:
        s = s32.double().requires_grad_(True)
        loss, kl = pixel_loss(s, t32.double(), labels, tau, mask, norm)
        if tau == 1.0 and not mask and norm == "reference":
            # The authors' own graph gives the stored value and gradient.
            ours = float(loss)
            loss = CriterionPixelWise()(s, t32.double().requires_grad_(True))
            assert abs(float(loss) - ours) <= 1e-12 * abs(ours), (key, float(loss), ours)
        loss.backward()
        p = "%s.%s." % (key, name)
        arrays[p + "config"] = [tau, 1.0 if mask else 0.0, 0.0 if norm == "reference" else 1.0]
        arrays[p + "loss"] = [float(loss)]
        arrays[p + "kl"] = [float(kl)]
        arrays[p + "grad"] = s.grad
        print("%-22s loss %.6f kl %.6f |grad|max %.3e" % (p, float(loss), float(kl), float(s.grad.abs().max())))


def main():
    arrays = {}
    make_case(arrays, "a", (2, 19, 9, 7), [("authors", 1.0, False, "reference"),
                                           ("tau2", 2.0, False, "reference")], seed=1)
    make_case(arrays, "b", (1, 5, 1, 1), [("authors", 1.0, False, "reference"),
                                          ("tau3_mean", 3.0, False, "mean")], seed=2)
    make_case(arrays, "c", (3, 6, 4, 5), [("authors", 1.0, False, "reference"),
                                          ("mean", 1.0, False, "mean"),
                                          ("mask_ref_tau2", 2.0, True, "reference"),
                                          ("mask_mean_tau1_5", 1.5, True, "mean")],
              ignore_fraction=0.3, seed=3)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loss_pixel.bin")
    refio.write(out, arrays)
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
