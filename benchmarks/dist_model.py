#!/usr/bin/env python3
"""Exposed communication per step of data-parallel training at 8/32/64 GPUs
(docs/DISTRIBUTED.md, "A model for 8, 32 and 64 GPUs"). Plain arithmetic, no
measurement: the inputs below say where each comes from.

    python3 benchmarks/dist_model.py
"""

# The `paper` preset's gradient buckets (student PSPNet-ResNet-18 + D, 65.0
# MB), in the order backward hands them over, with the fraction of the
# student's backward done at that point. Sizes and fractions from
# `mpirun -np 2 skd-cl bench --preset paper-small --steps 5 --no-phases`
# (the same networks as `paper`, crop 128): D's bucket at the start, the
# head/PSP/layer-4 bucket after 24-27 % of backward, the rest at its end.
BUCKETS = [(12.736, 0.0), (34.102, 0.26), (18.171, 1.0)]
TOTAL_MB = sum(mb for mb, _ in BUCKETS)
LATENCY_S = 5e-6          # per message hop
STAGING_BPS = 25e9        # device <-> host, PCIe 4 x16 in practice
BN_LAYERS = 60            # synchronised BN collectives per step (about 30 BN layers, forward and backward)
BN_ROUND_TRIP_S = 20e-6   # device -> host -> device for its statistics


def ring_s(mb, n, link_bps):
    """Ring allreduce of mb megabytes over n ranks."""
    return 2 * (n - 1) / n * mb * 1e6 / link_bps + 2 * (n - 1) * LATENCY_S


def sync_bn_s(n):
    tree = 2 * max(1, (n - 1).bit_length()) * LATENCY_S
    return BN_LAYERS * (BN_ROUND_TRIP_S + tree)


def exposed_s(n, link_bps, backward_s, overlap=True):
    """What the step waits for beyond its compute."""
    if not overlap:  # every bucket after backward, one after another
        comm = sum(ring_s(mb, n, link_bps) + 2 * mb * 1e6 / STAGING_BPS for mb, _ in BUCKETS)
        return comm + sync_bn_s(n)
    end = 0.0  # the buckets share one channel, in order
    for mb, ready in BUCKETS:
        start = max(ready * backward_s + mb * 1e6 / STAGING_BPS, end)
        end = start + ring_s(mb, n, link_bps)
    write_back = TOTAL_MB * 1e6 / STAGING_BPS
    return max(0.0, end - backward_s) + write_back + sync_bn_s(n)


def main():
    links = [("25 Gb/s", 25e9 / 8), ("100 Gb/s", 100e9 / 8), ("200 Gb/s", 200e9 / 8)]
    print(f"buckets {', '.join(f'{mb:.1f} MB at {r:.0%}' for mb, r in BUCKETS)}; total {TOTAL_MB:.1f} MB")
    for step_ms in (300, 100):
        backward_s = step_ms / 2e3  # the student's backward: half of a distillation step (assumed)
        print(f"\ncompute {step_ms} ms/step, backward {step_ms / 2:.0f} ms")
        print("| N | " + " | ".join(f"{name}: exposed ms (efficiency); nothing overlapped" for name, _ in links) + " |")
        for n in (8, 32, 64):
            cells = []
            for _, bps in links:
                e = exposed_s(n, bps, backward_s)
                e0 = exposed_s(n, bps, backward_s, overlap=False)
                cells.append(f"{e * 1e3:.1f} ({step_ms / (step_ms + e * 1e3):.1%}); "
                             f"{e0 * 1e3:.1f} ({step_ms / (step_ms + e0 * 1e3):.1%})")
            print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
