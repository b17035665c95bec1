"""Reference values for the pair-wise distillation loss (tests/test_loss_pair.c).

Run with Debian's torch:  /usr/bin/python3 tests/reference/gen_loss_pair.py
Writes tests/reference/loss_pair.bin.

Cases 'ref*' follow the authors' CriterionPairWiseforWholeFeatAfterPool
(utils/criterion.py of irfanICMLL/structure_knowledge_distillation),
re-expressed here: max pooling with kernel = stride = (int(shape[2] * scale),
int(shape[3] * scale)) and ceil_mode (their variables are called patch_w,
patch_h, but they are passed as (kH, kW): the height comes from H'), then
per-node features divided by the DETACHED norm + 1e-8, the M x M similarity
per sample, and sum((S_T - S_S)^2) / M^2 / N. The other cases vary it:
the exact (non-detached) norm, average pooling, and a local window written
with explicit loops.

Each case <name> stores: <name>.cfg = [n, cs, ct, h, w, node_size,
pool_scale, pool (0 max, 1 avg), radius (-1 global), norm (0 exact,
1 detached)], <name>.s, <name>.t (inputs; exact9x7 uses ref9x7's), <name>.loss (1 value),
<name>.grad (dL/d student features)."""
import os

import torch
import torch.nn.functional as F

import refio

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loss_pair.bin")
EPS = 1e-8


def kernel_of(h, w, node_size, scale):
    if node_size > 0:
        return node_size, node_size
    return int(h * scale), int(w * scale)


def pool_nodes(x, k, pool):
    if pool == 0:
        return F.max_pool2d(x, kernel_size=k, stride=k, padding=0, ceil_mode=True)
    return F.avg_pool2d(x, kernel_size=k, stride=k, padding=0, ceil_mode=True)


def normalised(p, detached):
    """(N, C, Hn, Wn) -> (N, C, M), each node divided by |f| + 1e-8."""
    norm = p.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS
    if detached:
        norm = norm.detach()
    return (p / norm).reshape(p.shape[0], p.shape[1], -1)


def global_loss(ps, pt, detached):
    fs, ft = normalised(ps, detached), normalised(pt, True)
    sim_s = torch.bmm(fs.transpose(1, 2), fs)
    sim_t = torch.bmm(ft.transpose(1, 2), ft)
    m = fs.shape[2]
    return ((sim_t - sim_s) ** 2).sum() / (m * m) / ps.shape[0]


def local_loss(ps, pt, radius, detached):
    """The clipped (2r+1)^2 window, one pair at a time."""
    n, _, hn, wn = ps.shape
    fs, ft = normalised(ps, detached), normalised(pt, True)
    m = hn * wn
    total = ps.new_zeros(())
    for b in range(n):
        for i in range(m):
            yi, xi = divmod(i, wn)
            ys = range(max(yi - radius, 0), min(yi + radius, hn - 1) + 1)
            xs = range(max(xi - radius, 0), min(xi + radius, wn - 1) + 1)
            count = len(ys) * len(xs)
            for y in ys:
                for x in xs:
                    j = y * wn + x
                    a_s = (fs[b, :, i] * fs[b, :, j]).sum()
                    a_t = (ft[b, :, i] * ft[b, :, j]).sum()
                    total = total + (a_s - a_t) ** 2 / (m * count)
    return total / n


def make_case(arrays, name, n, cs, ct, h, w, node_size=0, scale=0.5, pool=0, radius=-1, norm=1, s=None, t=None,
              shared_inputs=False):
    if s is None:
        s = torch.randn(n, cs, h, w).double()  # float32 values, computed in double
    if t is None:
        t = torch.randn(n, ct, h, w).double()
    s = s.clone().requires_grad_(True)
    k = kernel_of(h, w, node_size, scale)
    ps, pt = pool_nodes(s, k, pool), pool_nodes(t, k, pool)
    if pool == 1:  # ceil-mode average divides by the pixels actually in the patch
        for yy in range(ps.shape[2]):
            for xx in range(ps.shape[3]):
                patch = t[:, :, yy * k[0]:(yy + 1) * k[0], xx * k[1]:(xx + 1) * k[1]]
                assert torch.allclose(pt[:, :, yy, xx], patch.mean(dim=(2, 3)))
    detached = norm == 1
    if radius < 0:
        loss = global_loss(ps, pt, detached)
    else:
        loss = local_loss(ps, pt, radius, detached)
    loss.backward()
    arrays[name + ".cfg"] = torch.tensor([n, cs, ct, h, w, node_size, scale, pool, radius, norm])
    if not shared_inputs:
        arrays[name + ".s"] = s.detach().float()
        arrays[name + ".t"] = t.float()
    arrays[name + ".loss"] = loss.detach().reshape(1).float()
    arrays[name + ".grad"] = s.grad.float()
    print("%-12s nodes %s loss %.6e |grad|max %.3e" % (name, tuple(ps.shape[2:]), loss.item(),
                                                      s.grad.abs().max().item()))
    return s.detach(), t


def main():
    arrays = {}
    # The authors' criterion, scale 0.5: 9x7 -> kernel (4, 3) -> 3x3 nodes.
    s, t = make_case(arrays, "ref9x7", 2, 8, 16, 9, 7)
    assert tuple(pool_nodes(t, kernel_of(9, 7, 0, 0.5), 0).shape[2:]) == (3, 3)
    # Same inputs (not stored again), exact norm gradient: same value, different gradient.
    make_case(arrays, "exact9x7", 2, 8, 16, 9, 7, norm=0, s=s, t=t, shared_inputs=True)
    make_case(arrays, "ref16", 1, 5, 8, 16, 16)
    # pool_scale 0.3 on 12x7: kernel (3, 2) -> 4x4 nodes, partial last column.
    make_case(arrays, "scale12x7", 1, 4, 6, 12, 7, scale=0.3)
    make_case(arrays, "avg_exact", 2, 5, 7, 10, 8, node_size=3, pool=1, norm=0)
    make_case(arrays, "local_r1", 2, 6, 4, 9, 11, node_size=2, radius=1, norm=0)
    make_case(arrays, "local_r2_det", 1, 3, 5, 7, 8, node_size=1, pool=1, radius=2, norm=1)
    # Ties in max pooling: PyTorch's first maximum gets the gradient.
    gen = torch.Generator().manual_seed(7)
    s_ties = torch.randint(1, 6, (1, 3, 6, 6), generator=gen).double()
    t_ties = torch.randn(1, 2, 6, 6, generator=gen).float().double()
    patches = s_ties.reshape(3, 2, 3, 2, 3).permute(0, 1, 3, 2, 4).reshape(3, 4, 9)
    ties = (patches == patches.max(dim=2, keepdim=True).values).sum(dim=2) > 1
    assert ties.sum() >= 4, ties
    make_case(arrays, "ties", 1, 3, 2, 6, 6, node_size=3, radius=-1, norm=1, s=s_ties, t=t_ties)
    refio.write(OUT, arrays)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
