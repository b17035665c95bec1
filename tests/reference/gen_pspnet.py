"""PyTorch references for tests/test_nn.c: PSPNet on a dilated ResNet, built
here following the reference code (irfanICMLL/structure_knowledge_distillation,
networks/pspnet_combine.py) with plain BatchNorm2d + activation in place of
InPlaceABNSync (same state_dict keys), a width multiplier, and any class count
(the modules are in torch_models.py, shared with benchmarks/torch_step.py).

Weights are not stored: every tensor is a pure function of its name (see
weight_values; test_nn.c computes the same bits), so the file holds only the
inputs, outputs and gradients.

  pspnet.bin:
    r18_*: ResNet-18 PSPNet, width 0.05 (channels 3, 6, 13, 26, PSP 6), 5
      classes, input 3x3x33x41, dropout 0. Train-mode forward (Q, Q_dsn, F),
      backward from random dQ, dQ_dsn, dF (every parameter gradient), the
      running statistics after it, then an eval-mode forward and backward
      (the gradients of a selection of tensors, EVAL_GRADS).
    r50_*: ResNet-50 PSPNet, width 0.05 (Bottleneck, planes 3, 6, 13, 26,
      PSP 26), 3 classes, input 2x3x25x19: eval and train forward.
  pspnet_keys.txt: state_dict keys and shapes of the full-width R18 and R101
    PSPNets (21 classes) and of the two test networks (without the num_batches_tracked
    buffers, which skd-cl ignores).

Run with Debian's torch:  /usr/bin/python3 tests/reference/gen_pspnet.py"""
import math
import os

import numpy as np
import torch

import refio
from torch_models import Bottleneck, BasicBlock, PSPNet

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for ch in s.encode("ascii"):
        h = ((h ^ ch) * 0x100000001b3) & M64
    return h


def weight_values(name, shape):
    """The deterministic test weights (mirrored by test_nn.c): splitmix64 of
    fnv1a64(name) + (i + 1) * golden, top 24 bits -> u in [0, 1), v = 2u - 1;
    conv weights v * sqrt(6 / fan_in), BN weight 1 + v / 4, biases v / 10,
    running_mean v / 5, running_var 0.5 + u; computed in double, then float."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(name)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24
    v = 2.0 * u - 1.0
    if name.endswith("running_var"):
        x = 0.5 + u
    elif name.endswith("running_mean"):
        x = v * 0.2
    elif name.endswith("bias"):
        x = v * 0.1
    elif len(shape) == 4:
        x = v * math.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
    else:
        x = 1.0 + v * 0.25
    return torch.from_numpy(x.astype(np.float32).reshape(shape))


def set_weights(model):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                t.copy_(weight_values(name, tuple(t.shape)))


def keys_text(tag, model):
    lines = ["# " + tag]
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue  # ignored by skd-cl's loader, never saved
        lines.append("%s %s" % (name, ",".join(str(d) for d in t.shape)))
    return lines


EVAL_GRADS = ["conv1.weight", "bn1.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
              "layer2.1.bn1.bias", "layer3.0.conv2.weight", "layer4.1.conv1.weight", "layer4.1.bn2.weight",
              "pspmodule.stages.0.1.weight", "pspmodule.stages.3.2.bias", "pspmodule.bottleneck.0.weight",
              "pspmodule.bottleneck.1.weight", "dsn.0.weight", "dsn.0.bias", "dsn.1.bias", "head.weight"]

torch.manual_seed(2019)
out = {}
keys = []

# R18, width 0.05: train forward + backward, running stats, eval forward.
r18 = PSPNet(BasicBlock, [2, 2, 2, 2], 5, width=0.05, dropout=0.0)
set_weights(r18)
r18 = r18.double()
x = torch.randn(3, 3, 33, 41)
q, q_dsn, f = r18.train()(x.double())
dq, dq_dsn, df = torch.randn_like(q), torch.randn_like(q_dsn), torch.randn_like(f)
(q * dq).sum().add((q_dsn * dq_dsn).sum()).add((f * df).sum()).backward()
out.update({"r18_x": x, "r18_q": q, "r18_q_dsn": q_dsn, "r18_f": f, "r18_dq": dq, "r18_dq_dsn": dq_dsn,
            "r18_df": df})
for name, p in r18.named_parameters():
    out["r18_grad/" + name] = p.grad.clone()  # zero_grad below reuses the tensor
for name, b in r18.named_buffers():
    if not name.endswith("num_batches_tracked"):
        out["r18_after/" + name] = b.clone()
r18.zero_grad()
q, q_dsn, f = r18.eval()(x.double())
out.update({"r18_eval_q": q, "r18_eval_q_dsn": q_dsn, "r18_eval_f": f})
# Eval-mode backward (BN statistics constant), for a selection of tensors
# covering every kind of unit.
(q * dq).sum().add((q_dsn * dq_dsn).sum()).add((f * df).sum()).backward()
params = dict(r18.named_parameters())
for name in EVAL_GRADS:
    out["r18_evalgrad/" + name] = params[name].grad
keys += keys_text("r18_w0.05_c5", r18)

# R50, width 0.05: eval and train forward.
r50 = PSPNet(Bottleneck, [3, 4, 6, 3], 3, width=0.05, dropout=0.0)
set_weights(r50)
r50 = r50.double()
x = torch.randn(2, 3, 25, 19)
out["r50_x"] = x
with torch.no_grad():
    q, q_dsn, f = r50.eval()(x.double())
    out.update({"r50_eval_q": q, "r50_eval_q_dsn": q_dsn, "r50_eval_f": f})
    q, q_dsn, f = r50.train()(x.double())
    out.update({"r50_q": q, "r50_q_dsn": q_dsn, "r50_f": f})
keys += keys_text("r50_w0.05_c3", r50)

keys += keys_text("r18_w1_c21", PSPNet(BasicBlock, [2, 2, 2, 2], 21))
keys += keys_text("r101_w1_c21", PSPNet(Bottleneck, [3, 4, 23, 3], 21))

here = os.path.dirname(os.path.abspath(__file__))
refio.write(os.path.join(here, "pspnet.bin"), out)
with open(os.path.join(here, "pspnet_keys.txt"), "w") as fh:
    fh.write("\n".join(keys) + "\n")
print("floats:", sum(np.asarray(v.detach() if hasattr(v, "detach") else v).size for v in out.values()))
