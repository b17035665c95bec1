"""Times skd-cl reading a large torch.save file: a full-width ResNet-101
PSPNet (19 classes, the reference teacher's size) saved by Debian's torch in
both formats under /tmp (not kept), then under /usr/bin/time -v (wall time,
peak resident memory): benchmarks/pth_open.c (open, then read every tensor
as float32) and `skd-cl convert` (reads the file twice: raw names and
values, writes the safetensors file, opens it as a network on the device).

Run from the repository root after building:
  /usr/bin/python3 benchmarks/pth_open.py build/skd-cl"""
import collections
import os
import re
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from torch_models import Bottleneck, PSPNet  # noqa: E402

skd = os.path.abspath(sys.argv[1])
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
opener = "/tmp/skd_pth_open"
subprocess.run(["gcc", "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-I" + os.path.join(root, "include"),
                os.path.join(root, "benchmarks", "pth_open.c"), os.path.join(os.path.dirname(skd), "libskd.a"),
                "-lzip", "-lcjson", "-lm", "-lOpenCL", "-lclblast", "-lpthread", "-o", opener], check=True)


def timed(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return wall, rss / 1024, (r.stdout.strip() or r.stderr.strip()[:300])


net = PSPNet(Bottleneck, [3, 4, 23, 3], 19)
state = net.state_dict()
teacher = collections.OrderedDict()
for k, v in state.items():  # the released teacher's layout
    k = ("head.0." + k[10:]) if k.startswith("pspmodule.") else ("head.1." + k[5:]) if k.startswith("head.") else k
    teacher[k] = v
for name, legacy in (("zip", False), ("legacy", True)):
    path = "/tmp/skd_r101_%s.pth" % name
    torch.save(teacher, path, _use_new_zipfile_serialization=not legacy)
    t0 = time.time()
    torch.load(path)
    t_torch = time.time() - t0
    out = "/tmp/skd_r101_%s.safetensors" % name
    print("%-6s %.1f MB, torch.load %.2f s" % (name, os.path.getsize(path) / 1e6, t_torch))
    wall, rss, text = timed([opener, path])
    print("  open + read: %s (wall %s, peak RSS %.0f MB)" % (text, wall, rss))
    wall, rss, text = timed([skd, "convert", path, out, "--arch", "resnet101"])
    print("  skd-cl convert: wall %s, peak RSS %.0f MB: %s" % (wall, rss, text))
    os.remove(path)
    if os.path.exists(out):
        os.remove(out)
