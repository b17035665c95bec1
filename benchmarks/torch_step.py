"""One skd-cl distillation step in PyTorch on the CPU, timed phase by phase,
to set beside `skd-cl bench` (same presets, same phase names).

Measures: wall-clock time per training step (median over --steps steps after
--warmup untimed ones), images/s (batch / median step), the median of each
phase, and the process's peak resident memory.

The step follows src/train/trainer.c (METHOD.md sections 4-6):
  data         a seeded random batch (image ~ N(0, 50^2), labels uniform over
               the classes with ~5% ignore 255); no decoding or augmentation
  teacher_fwd  teacher PSPNet, eval mode, no autograd
  student_fwd  student PSPNet, train mode (BatchNorm batch statistics, Dropout2d 0.1)
  task_loss    CE(bilinear up(Q_S), align_corners) + 0.4 * CE(up(Q_dsn)), ignore 255
  pixel        lambda_pi * sum_batch -softmax(Q_T) log_softmax(Q_S) / (H'W')
               (--pixel-norm mean: / (N H'W'))
  pair         lambda_pa * global cosine affinity of 2x2 max-pooled nodes of F,
               sum (A_T - A_S)^2 / M^2 / N (exact norm, skd-cl's default)
  holistic_g   lambda_d * -mean D(Q_S), gradient into Q_S only
  student_bwd  zero the student's gradients, backward through the student
  optimiser    student SGD (lr 0.01 poly 0.9, momentum 0.9, weight decay 5e-4)
  d_step       WGAN-GP: D(Q_T), D(Q_S), D(x_hat) with the gradient penalty's
               parameter gradient by double backward
               (torch.autograd.grad(create_graph=True)), then D SGD (lr 4e-4
               poly 0.9, momentum 0.9)
As in skd-cl, each loss phase computes its own gradient with respect to the
student's outputs (torch.autograd.grad into detached copies of Q_S, Q_dsn, F),
and student_bwd runs the network backward once from the summed gradients.

The networks are tests/reference/torch_models.py (the modules the reference
generators use): PSPNet on a dilated ResNet with the reference code's layout,
the SAGAN discriminator (BatchNorm preprocessing, spectral norm, self-attention,
skd's depth rule for the last kernel), default PyTorch initialisation.

Which convolution code ran: ATen picks a backend per convolution call
(select_conv_backend in aten/src/ATen/native/Convolution.cpp), and in 1.13
the choice depends on the thread count: oneDNN (mkldnn) for most layers, but
with one thread the unstrided, undilated 1x1 convolutions of batches under 16
take the native im2col + BLAS path. The script profiles one step and reports
the split ("conv_path": onednn, native or mixed; see conv_paths()).

Run with Debian's torch (plain python3 may be another interpreter):
  /usr/bin/python3 benchmarks/torch_step.py --preset demo
  /usr/bin/python3 benchmarks/torch_step.py --preset paper-small --steps 10 --json
  /usr/bin/python3 benchmarks/torch_step.py --preset demo --threads 2"""
import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from torch_models import BasicBlock, Bottleneck, Discriminator, PSPNet  # noqa: E402

PHASES = ["data", "teacher_fwd", "student_fwd", "task_loss", "pixel", "pair", "holistic_g", "d_step",
          "student_bwd", "optimiser"]
ARCHS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet101": (Bottleneck, [3, 4, 23, 3])}
# As `skd-cl bench`: (teacher, teacher width, student, student width, classes, crop, batch, D width)
PRESETS = {
    "demo": ("resnet18", 0.25, "resnet18", 0.125, 8, 128, 4, 16),
    "paper": ("resnet101", 1.0, "resnet18", 1.0, 19, 512, 8, 64),
    "paper-small": ("resnet101", 1.0, "resnet18", 1.0, 19, 128, 2, 64),
}
IGNORE = 255
LAMBDA_PI, LAMBDA_PA, LAMBDA_D, LAMBDA_GP, DSN_WEIGHT = 10.0, 1.0, 0.1, 10.0, 0.4


def pixel_loss(qs, qt, norm_mean):
    n, _, h, w = qs.shape
    total = -(F.softmax(qt, dim=1) * F.log_softmax(qs, dim=1)).sum()
    return total / (h * w * (n if norm_mean else 1))


def pair_loss(fs, ft, pool_scale=0.5):
    k = (int(fs.shape[2] * pool_scale), int(fs.shape[3] * pool_scale))

    def affinity(f):
        p = F.max_pool2d(f, kernel_size=k, stride=k, padding=0, ceil_mode=True)
        p = p / (p.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-8)
        p = p.reshape(p.shape[0], p.shape[1], -1)
        return torch.bmm(p.transpose(1, 2), p), p.shape[2]

    a_s, m = affinity(fs)
    a_t, _ = affinity(ft)
    return ((a_t - a_s) ** 2).sum() / (m * m) / fs.shape[0]


# How we tell which code path the convolutions took: every F.conv2d (and
# every convolution inside a double backward) reaches aten::_convolution, which
# calls one backend op that the profiler records: oneDNN's is
# aten::mkldnn_convolution, ATen's own CPU code (im2col + BLAS, the slow
# dilated and transposed kernels) the ones in NATIVE_CONV_OPS. Counting op
# names, not the profiler's parent/child links: those missed children here.
# thnn_conv2d calls _slow_conv2d_forward, so only the outer op is counted. A
# backend that is no op (XNNPACK, the depthwise Winograd kernel) is "other":
# the calls not accounted for. A convolution's backward takes the backend its
# forward took (the same selection), so these calls tell for the whole step.
ONEDNN_CONV_OPS = {"aten::mkldnn_convolution"}
NATIVE_CONV_OPS = {"aten::thnn_conv2d", "aten::slow_conv_dilated2d", "aten::slow_conv_transpose2d"}


def conv_paths(events):
    """Convolution calls by code path in profiler events, and the verdict:
    onednn or native (every call), else mixed (none: no convolution ran)."""
    names = [e.name for e in events]
    calls = names.count("aten::_convolution")
    onednn = sum(n in ONEDNN_CONV_OPS for n in names)
    native = sum(n in NATIVE_CONV_OPS for n in names)
    path = "none" if calls == 0 else "onednn" if onednn == calls else "native" if native == calls else "mixed"
    return path, {"onednn": onednn, "native": native, "other": calls - onednn - native}


def poly(lr, it, max_it):
    return lr * (1.0 - it / max_it) ** 0.9


class Bench:
    def __init__(self, args):
        t_arch, t_width, s_arch, s_width, self.classes, self.crop, self.batch, d_width = PRESETS[args.preset]
        self.args = args
        torch.manual_seed(args.seed)
        self.dev = torch.device(args.device)
        self.teacher = PSPNet(*ARCHS[t_arch], self.classes, width=t_width).eval().to(self.dev)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.student = PSPNet(*ARCHS[s_arch], self.classes, width=s_width).train().to(self.dev)
        with torch.no_grad():
            q, _, _ = self.student.eval()(torch.zeros(2, 3, self.crop, self.crop, device=self.dev))
        self.student.train()
        h, w = q.shape[2], q.shape[3]
        self.disc = Discriminator(self.classes, d_width, 1, h, w).train().to(self.dev)
        self.d_params = list(self.disc.parameters())
        self.opt = torch.optim.SGD(self.student.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        self.d_opt = torch.optim.SGD(self.d_params, lr=4e-4, momentum=0.9)
        self.max_it = args.warmup + args.steps
        self.desc = {"teacher": "%s width %g" % (t_arch, t_width), "student": "%s width %g" % (s_arch, s_width),
                     "classes": self.classes, "crop": self.crop, "batch": self.batch, "d_width": d_width,
                     "logits": [h, w]}

    def batch_of(self, step):
        g = torch.Generator().manual_seed(self.args.seed * 1000003 + step)
        image = torch.randn(self.batch, 3, self.crop, self.crop, generator=g) * 50.0
        labels = torch.randint(0, self.classes, (self.batch, self.crop, self.crop), generator=g)
        labels[torch.rand(labels.shape, generator=g) < 0.05] = IGNORE
        mix = torch.rand(self.batch, 1, 1, 1, generator=g)
        # Made on the CPU (the same values on every device), then moved.
        return image.to(self.dev), labels.to(self.dev), mix.to(self.dev)

    def step(self, it):
        times = {}
        clock = [time.perf_counter()]

        def lap(name):
            if self.dev.type == "cuda":
                torch.cuda.synchronize()  # kernels run asynchronously: time them, not their launch
            now = time.perf_counter()
            times[name] = now - clock[0]
            clock[0] = now

        image, labels, mix = self.batch_of(it)
        lap("data")
        with torch.no_grad():
            qt, _, ft = self.teacher(image)
        lap("teacher_fwd")
        qs, qs_dsn, fs = self.student(image)
        lap("student_fwd")

        size = labels.shape[1:]
        q = qs.detach().requires_grad_(True)
        q_dsn = qs_dsn.detach().requires_grad_(True)
        up = F.interpolate(q, size=size, mode="bilinear", align_corners=True)
        up_dsn = F.interpolate(q_dsn, size=size, mode="bilinear", align_corners=True)
        task = F.cross_entropy(up, labels, ignore_index=IGNORE) + DSN_WEIGHT * F.cross_entropy(
            up_dsn, labels, ignore_index=IGNORE)
        dq, ddsn = torch.autograd.grad(task, [q, q_dsn])
        lap("task_loss")
        (g,) = torch.autograd.grad(LAMBDA_PI * pixel_loss(q, qt, self.args.pixel_norm == "mean"), q)
        dq = dq + g
        lap("pixel")
        f = fs.detach().requires_grad_(True)
        (df,) = torch.autograd.grad(LAMBDA_PA * pair_loss(f, ft), f)
        lap("pair")
        # Only Q_S's gradient is asked for: D's parameter gradients are not computed.
        (g,) = torch.autograd.grad(LAMBDA_D * -self.disc(q).mean(), q)
        dq = dq + g
        lap("holistic_g")

        self.opt.zero_grad()
        torch.autograd.backward([qs, qs_dsn, fs], [dq, ddsn, df])
        lap("student_bwd")
        for group in self.opt.param_groups:
            group["lr"] = poly(0.01, it, self.max_it)
        self.opt.step()
        lap("optimiser")

        self.d_opt.zero_grad()
        q_s = qs.detach()
        d_t, d_s = self.disc(qt), self.disc(q_s)
        x_hat = (mix * qt + (1 - mix) * q_s).requires_grad_(True)
        d_x = self.disc(x_hat)
        (gx,) = torch.autograd.grad(d_x, x_hat, grad_outputs=torch.ones_like(d_x), create_graph=True)
        penalty = ((gx.reshape(gx.shape[0], -1).pow(2).sum(1).sqrt() - 1) ** 2).mean()
        loss_d = LAMBDA_D * (d_s.mean() - d_t.mean()) + LAMBDA_D * LAMBDA_GP * penalty
        loss_d.backward()
        for group in self.d_opt.param_groups:
            group["lr"] = poly(4e-4, it, self.max_it)
        self.d_opt.step()
        lap("d_step")
        if not torch.isfinite(task + loss_d.detach()):
            raise RuntimeError("non-finite loss at step %d" % it)
        return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--pixel-norm", choices=["reference", "mean"], default="reference")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda (an NVIDIA GPU, with a CUDA build of torch)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device not in ("cpu", "cuda"):
        ap.error("--device must be cpu or cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: this torch (%s) sees no CUDA device" % torch.__version__)

    bench = Bench(args)
    rss_setup_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    steps = []
    path = None
    for it in range(args.warmup + args.steps):
        if it == 0 and args.warmup > 0:
            # The first warm-up step runs under the profiler (its time is not
            # kept), so telling the code path costs no extra step.
            with torch.autograd.profiler.profile() as prof:
                bench.step(it)
            path = conv_paths(prof.function_events)
            continue
        t = bench.step(it)
        if it >= args.warmup:
            steps.append(t)
    if path is None:  # no warm-up: one more step, untimed, under the profiler
        with torch.autograd.profiler.profile() as prof:
            bench.step(args.warmup + args.steps)
        path = conv_paths(prof.function_events)
    total = [sum(t.values()) for t in steps]
    median = statistics.median(total)
    result = {
        "framework": "pytorch %s (%s)" % (torch.__version__, args.device.upper()),
        "python": sys.executable,
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkldnn_enabled": torch.backends.mkldnn.enabled,
        "conv_path": path[0],
        "conv_calls": path[1],
        "preset": args.preset,
        "config": bench.desc,
        "pixel_norm": args.pixel_norm,
        "warmup": args.warmup,
        "steps": args.steps,
        "ms_per_step_median": 1e3 * median,
        "ms_per_step_min": 1e3 * min(total),
        "ms_per_step_max": 1e3 * max(total),
        "images_per_s": bench.batch / median,
        "phases_ms_median": {p: 1e3 * statistics.median(t[p] for t in steps) for p in PHASES},
        # ru_maxrss: the process's high-water mark of resident memory (Python,
        # torch's libraries, weights, optimiser state, activations, allocator caches).
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "peak_rss_after_setup_mib": rss_setup_kib / 1024.0,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    c = bench.desc
    print("torch_step: %s, preset %s: teacher %s, student %s, %d classes, crop %d, batch %d, D width %d, "
          "logits %dx%d, %d threads" % (result["framework"], args.preset, c["teacher"], c["student"], c["classes"],
                                        c["crop"], c["batch"], c["d_width"], c["logits"][0], c["logits"][1],
                                        result["threads"]))
    calls = result["conv_calls"]
    print("conv path: %s (calls in one step: %d oneDNN, %d native, %d other); mkldnn available %s, enabled %s" % (
        result["conv_path"], calls["onednn"], calls["native"], calls["other"], result["mkldnn_available"],
        result["mkldnn_enabled"]))
    print("step: median %.1f ms (min %.1f, max %.1f) over %d steps after %d warm-up; %.2f images/s" % (
        result["ms_per_step_median"], result["ms_per_step_min"], result["ms_per_step_max"], args.steps,
        args.warmup, result["images_per_s"]))
    for p in PHASES:
        ms = result["phases_ms_median"][p]
        print("  %-12s %10.1f ms  %5.1f%%" % (p, ms, 100.0 * ms / result["ms_per_step_median"]))
    print("peak RSS (ru_maxrss, whole process): %.0f MiB (after building the networks: %.0f MiB)" % (
        result["peak_rss_mib"], result["peak_rss_after_setup_mib"]))


if __name__ == "__main__":
    main()
