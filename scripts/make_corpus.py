#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus, tests/fuzz/corpus/<target>/, small files
that each reach a different path of the parser (valid inputs; the fuzzer
finds the broken ones). Run from the repository root with Debian's python3
and python3-pil: /usr/bin/python3 scripts/make_corpus.py. Same bytes on
every run."""
import io
import json
import os
import struct
import zlib

from PIL import Image

ROOT = os.path.join("tests", "fuzz", "corpus")

# A run configuration as skd-cl stores it in a checkpoint (printed by a
# 1-step demo run); the corpus varies a few fields.
CONFIG = json.loads(
    '{"data-dir":"","train-list":"demo/train.txt","val-list":"","preset":"demo","classes":8,"crop":32,'
    '"batch":2,"scale-min":0.5,"scale-max":2.0999999046325684,"scale-step":0.10000000149011612,"mirror":true,'
    '"imagenet-norm":false,"arch":"resnet18","width":0.0625,"teacher":"","teacher-arch":"resnet101",'
    '"teacher-width":1,"unlabeled-list":"","unlabeled-batch":0,"distill-warmup":0,"steps":1,'
    '"lr":0.00999999977648258,"momentum":0.899999976158142,"weight-decay":0.00050000002374872565,'
    '"poly-power":0.899999976158142,"dsn-weight":0.40000000596046448,"seed":"1","pixel":true,"lambda-pi":1,'
    '"tau":1,"pixel-norm":"mean","pixel-mask":false,"pair":true,"lambda-pa":1,"node-size":0,"pool-scale":0.5,'
    '"window":-1,"pair-pool":"max","pair-norm":"exact","holistic":true,"lambda-d":0.10000000149011612,'
    '"lambda-gp":10,"adv":"wgan-gp","d-preprocess":1,"d-conditional":false,"d-width":64,'
    '"d-lr":0.00039999998989515,"d-momentum":0.899999976158142,"out":"r1","val-every":0,"log-every":10,'
    '"save-every":0,"log-grad-norms":false}')


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def safetensors(tensors, metadata):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = compact(header)
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def configs():
    other = dict(CONFIG, arch="resnet50", crop=64, holistic=False, adv="hinge", teacher="t.safetensors")
    put("config", "default.json", compact(CONFIG))
    put("config", "other.json", compact(other))
    put("config", "partial.json", b'{"crop": 48, "lr": 0.02, "pair-pool": "avg"}')
    put("config", "empty.json", b"{}")
    # Once a crash: a float at its lower bound failed to read back after printing.
    put("config", "width_bound.json", b'{"width": 0.01, "tau": 0.01}')


def checkpoints():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    meta = {"format": "skd-cl training checkpoint", "config": compact(CONFIG).decode(), "step": "3",
            "best_miou": "0.25"}
    put("safetensors", "checkpoint.safetensors", safetensors({
        "conv1.weight": ("F32", [1, 1, 2, 2], f32),
        "bn1.running_var": ("F32", [4], f32),
        "bn1.num_batches_tracked": ("I64", [], struct.pack("<q", 7)),
        "head.bias": ("F16", [2], struct.pack("<2e", 0.5, -1.0)),
    }, meta))
    put("safetensors", "dtypes.safetensors", safetensors({
        "a": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "b": ("F64", [1], struct.pack("<d", 2.5)),
        "c": ("I32", [2], struct.pack("<2i", 1, -1)),
        "d": ("BOOL", [3], b"\x00\x01\x01"),
        "e": ("U8", [0], b""),
    }, {"best_miou": "nan", "step": "0"}))
    put("safetensors", "nometa.safetensors", safetensors({"x": ("F32", [1], f32[:4])}, None))


def lists():
    put("list", "labeled.txt", b"# comment\n\nimages/a.png labels/a.png\r\n\t/abs/b.jpg\tlabels/b.png\n")
    put("list", "unlabeled.txt", b"u1.jpg\nu2.png\n   # indented comment\nu3.png extra_field\n")
    put("list", "bom_dup.txt", b"\xef\xbb\xbfa.png a_l.png\na.png a_l.png\nb.png b_l.png")


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def images():
    def save(name, im, **kw):
        b = io.BytesIO()
        im.save(b, format="PNG" if name.endswith(".png") else "JPEG", **kw)
        put("image", name, b.getvalue())

    rgb = Image.new("RGB", (6, 5))
    rgb.putdata([((17 * i) % 256, (5 * i) % 256, (255 - 9 * i) % 256) for i in range(30)])
    save("rgb.png", rgb)
    save("rgba.png", rgb.convert("RGBA"))
    save("grey.png", rgb.convert("L"))
    save("grey_alpha.png", rgb.convert("LA"))
    save("interlaced.png", rgb, interlace=1)
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    save("palette.png", pal)
    save("palette4.png", pal, bits=4)
    save("bilevel.png", rgb.convert("1"))
    save("baseline.jpg", rgb, quality=90)
    save("progressive.jpg", rgb, quality=80, progressive=True)
    save("grey.jpg", rgb.convert("L"), quality=90)
    put("image", "rgb.ppm", b"P6\n# comment\n6 5\n255\n" + rgb.tobytes())
    put("image", "grey.pgm", b"P5 6 5 255\n" + rgb.convert("L").tobytes())
    # 16-bit grey: a depth map in millimetres, 0 = missing.
    depth = Image.new("I;16", (6, 5))
    depth.putdata([0 if i % 7 == 0 else 500 + 331 * i for i in range(30)])
    save("depth16.png", depth)
    # 16-bit RGB, written by hand (Pillow writes 16-bit only for grey).
    raw = b"".join(b"\x00" + bytes(range(r * 24, r * 24 + 24)) for r in range(2))
    ihdr = struct.pack(">IIBBBBB", 4, 2, 16, 2, 0, 0, 0)
    put("image", "rgb16.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
        png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


if __name__ == "__main__":
    configs()
    checkpoints()
    lists()
    images()
