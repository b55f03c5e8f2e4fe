#!/usr/bin/env python3
"""Writes a synthetic sales history (date,sku,units) for the `ordo forecast csv` benchmark:
SKUS series x DAYS days with weekly seasonality, trend, promotions and intermittent sellers.
Deterministic for a seed. Usage: synth_history.py SKUS DAYS SEED > history.csv"""
import datetime
import math
import random
import sys


def main():
    skus, days, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    start = datetime.date(2022, 1, 3)
    dates = [(start + datetime.timedelta(days=d)).isoformat() for d in range(days)]
    out = sys.stdout
    out.write("date,sku,units\n")
    for s in range(skus):
        level = math.exp(rng.uniform(-1.5, 3.5))
        profile = [rng.uniform(0.6, 1.4) for _ in range(7)]
        profile[6] *= 0.5
        trend = rng.uniform(-0.4, 0.6) / days
        phase = rng.uniform(0, 2 * math.pi)
        sku = f"SKU-{s:05d}"
        for d in range(days):
            mean = level * profile[d % 7] * (1 + trend * d) * (1 + 0.25 * math.sin(2 * math.pi * d / 365 + phase))
            if rng.random() < 0.01:
                mean *= 3  # a promotion day
            # Poisson draw (Knuth for small means, normal approximation for large).
            if mean < 30:
                limit, k, p = math.exp(-max(mean, 0)), 0, 1.0
                while True:
                    p *= rng.random()
                    if p <= limit:
                        break
                    k += 1
            else:
                k = max(0, int(round(rng.gauss(mean, math.sqrt(mean)))))
            if k > 0:
                out.write(f"{dates[d]},{sku},{k}\n")


if __name__ == "__main__":
    main()
