"""torch.save files for tests/test_pth.c and tests/test_pth.sh, written by
Debian's torch in both of its formats (zip, and legacy with
_use_new_zipfile_serialization=False).

  pth/tensors_{zip,legacy}.pth: an OrderedDict of float32, float16, bfloat16,
    float64 and int64 tensors, a transposed (non-contiguous) view and an
    offset slice that share one storage, a scalar int64 buffer; its exact
    contents in pth/tensors_expected.txt ("name DTYPE d0,d1,.. hexbytes" of
    the contiguous little-endian values, written by numpy, not by torch's
    serialiser).
  pth/wrapped_zip.pth: {"state_dict": the same under "module." keys, "epoch": 7}.
  pth/net_zip.pth: a ResNet-18 PSPNet, width 0.05, 5 classes, skd-cl's names.
  pth/net_teacher_legacy.pth: the same network in the released teacher's
    layout (head.0.* = pspmodule.*, head.1.* = head.*), legacy format.
  pth/torchscript.pt: a scripted nn.Linear(2, 2) (refused by name).
  pth/net.bin (refio): input x (1x3x33x41) and the eval-mode logits q.
  pth/image.png, label.png, list.txt: a 57x73 image and, as its label,
    PyTorch's argmax of the network's upsampled logits (see below).
  pth/deepstem_zip.pth: the network's deep-stem ResNet-18 backbone with an
    fc layer (as CSAILVision's resnet18-imagenet.pth) and num_batches_tracked.
  pth/torchvision_zip.pth: a torchvision-layout ResNet-18 (7x7 conv1, no
    conv2/conv3, no layer1.0.downsample, fc) at the same width.

The legacy format names storages by their memory address, so those two
files differ in bytes (not in content) from run to run; the others repeat.

Run with Debian's torch:  /usr/bin/python3 tests/reference/gen_pth.py"""
import collections
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refio  # noqa: E402
from torch_models import BasicBlock, PSPNet, scale  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pth")
WIDTH = 0.05


def save(obj, name, legacy=False):
    torch.save(obj, os.path.join(HERE, name), _use_new_zipfile_serialization=not legacy)


def hexbytes(t):
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: the top half of float32
        a = t.contiguous().float().numpy().view("<u4") >> 16
        return a.astype("<u2").tobytes().hex()
    return np.ascontiguousarray(t.numpy()).astype(t.numpy().dtype.newbyteorder("<")).tobytes().hex()


DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int64: "I64"}

torch.manual_seed(11)
os.makedirs(HERE, exist_ok=True)

# Tensors of every dtype, views and a shared storage.
base = torch.randn(4, 6)
sd = collections.OrderedDict()
sd["f32"] = base
sd["f32_t"] = base.t()  # non-contiguous, same storage
sd["f32_slice"] = base[1:3, ::2]  # offset and strides
sd["f16"] = torch.randn(3, 5).half()
sd["bf16"] = torch.randn(2, 3).bfloat16()
sd["f64"] = torch.randn(7).double()
sd["i64"] = torch.arange(-3, 5, dtype=torch.int64).reshape(2, 4)
sd["scalar"] = torch.tensor(42, dtype=torch.int64)
sd["conv.weight"] = torch.randn(2, 3, 1, 2)
save(sd, "tensors_zip.pth")
save(sd, "tensors_legacy.pth", legacy=True)
with open(os.path.join(HERE, "tensors_expected.txt"), "w") as f:
    for k, v in sd.items():
        f.write("%s %s %s %s\n" % (k, DT[v.dtype], ",".join(str(d) for d in v.shape) or "-", hexbytes(v)))
save({"state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 7},
     "wrapped_zip.pth")

# The network: default init, then BN statistics made non-trivial.
net = PSPNet(BasicBlock, [2, 2, 2, 2], 5, width=WIDTH, dropout=0.0)
with torch.no_grad():
    for name, b in net.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn_like(b) * 0.1)
        elif name.endswith("running_var"):
            b.copy_(torch.rand_like(b) + 0.5)
    # A classifier that tells pixels apart (default init predicts one class
    # nearly everywhere): larger weights, no bias.
    net.head.weight.mul_(8.0)
    net.head.bias.zero_()
net.eval()
x = torch.randn(1, 3, 33, 41)
with torch.no_grad():
    q, _, _ = net(x)
refio.write(os.path.join(HERE, "net.bin"), {"x": x, "q": q})
state = net.state_dict()
save(state, "net_zip.pth")
teacher = collections.OrderedDict()
for k, v in state.items():
    if k.startswith("pspmodule."):
        k = "head.0." + k[len("pspmodule."):]
    elif k.startswith("head."):
        k = "head.1." + k[len("head."):]
    teacher[k] = v
save(teacher, "net_teacher_legacy.pth", legacy=True)

# skd-cl eval's whole pipeline: an image, the reference normalisation (BGR,
# mean subtraction), the network, bilinear upsampling (align corners) to the
# image size, argmax; PyTorch's argmax is the label image, so skd-cl eval on
# the .pth files must report a pixel accuracy of exactly 1.


def write_png(path, a):
    """8-bit grey (H, W) or RGB (H, W, 3), unfiltered rows."""
    h, w = a.shape[:2]
    colour = 2 if a.ndim == 3 else 0
    raw = b"".join(b"\0" + a[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# Regions of different colours, noise on top: the classes change across it.
yy, xx = torch.meshgrid(torch.arange(57.0), torch.arange(73.0), indexing="ij")
smooth = torch.stack([128 + 120 * torch.sin(xx / 9 + k) * torch.cos(yy / 7 - k) for k in range(3)], 2)
rgb = (smooth + 20 * torch.randn(57, 73, 3)).clamp(0, 255).to(torch.uint8)
write_png(os.path.join(HERE, "image.png"), rgb.numpy())
mean = torch.tensor([104.008, 116.669, 122.679], dtype=torch.float32)
bgr = rgb.float().flip(2) - mean  # output channel c = pixel channel 2 - c, minus mean[c]
with torch.no_grad():
    q, _, _ = net(bgr.permute(2, 0, 1).unsqueeze(0).contiguous())
    up = torch.nn.functional.interpolate(q, size=(57, 73), mode="bilinear", align_corners=True)
    top2 = up[0].topk(2, dim=0).values
label = up[0].argmax(0).to(torch.uint8)
write_png(os.path.join(HERE, "label.png"), label.numpy())
with open(os.path.join(HERE, "list.txt"), "w") as f:
    f.write("image.png label.png\n")
print("eval image: classes present", sorted(set(label.flatten().tolist())),
      "smallest top-2 logit gap %.3g" % float((top2[0] - top2[1]).min()))

# A deep-stem backbone as CSAILVision's resnet18-imagenet.pth: the backbone's
# tensors (every one the PSPNet has before pspmodule/dsn/head) and fc.
backbone = collections.OrderedDict((k, v) for k, v in state.items() if k.split(".")[0] in
                                   ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "layer1", "layer2", "layer3",
                                    "layer4"))
backbone["fc.weight"] = torch.randn(10, scale(512, WIDTH))
backbone["fc.bias"] = torch.randn(10)
save(backbone, "deepstem_zip.pth")


# torchvision's layout: 7x7 stem, no downsample in layer1 (64 -> 64).
class TV(nn.Module):
    def __init__(self, w):
        super().__init__()
        s = lambda c: scale(c, w)
        self.conv1 = nn.Conv2d(3, s(64), 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(s(64))
        self.inplanes = s(64)
        self.layer1 = self._layer(s(64), 1)
        self.layer2 = self._layer(s(128), 2)
        self.layer3 = self._layer(s(256), 2)
        self.layer4 = self._layer(s(512), 2)
        self.fc = nn.Linear(s(512), 10)

    def _layer(self, planes, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        blocks = nn.Sequential(BasicBlock(self.inplanes, planes, stride, 1, down), BasicBlock(planes, planes))
        self.inplanes = planes
        return blocks


save(TV(WIDTH).state_dict(), "torchvision_zip.pth")
# A TorchScript archive, which skd-cl must name and refuse.
torch.jit.script(nn.Linear(2, 2)).save(os.path.join(HERE, "torchscript.pt"))
print("bytes:", sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE)))
