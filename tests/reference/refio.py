"""Writes the reference files that tests/reference_file.c reads.

Format: b"SKDREF01", then per array: u32 name length, name (ASCII),
u32 ndim, u32 dims[ndim], float32 data (all little endian)."""
import struct

import numpy as np


def write(path, arrays):
    """arrays: dict name -> array-like (torch tensors are detached first)."""
    with open(path, "wb") as f:
        f.write(b"SKDREF01")
        for name, value in arrays.items():
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            a = np.ascontiguousarray(np.asarray(value, dtype="<f4"))
            raw = name.encode("ascii")
            f.write(struct.pack("<I", len(raw)))
            f.write(raw)
            f.write(struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dI" % a.ndim, *a.shape))
            f.write(a.tobytes())
