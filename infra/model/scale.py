"""A large shop, winback's fit against `lifetimes`' in one run, on the same customers.

Usage: python infra/model/scale.py WINBACK_BINARY ORDERS_CSV CUTOFF   (a Python with `lifetimes`)
ORDERS_CSV comes from infra/model/generate_orders.py (500,000 customers; a cut-off of 2025-08-01
leaves about 431,000 known). winback fits inside `winback backtest` (its purchase-model fit is
timed apart from the spend fit); `lifetimes`' ModifiedBetaGeoFitter fits the same customers'
(x, t_x, T) in this process. Both log-likelihoods are computed here with one formula, so they
compare. Prints ratios (machine-independent) with the times they come from.
"""
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from lifetimes import ModifiedBetaGeoFitter
from scipy.special import betaln, gammaln

binary, csv, cutoff = sys.argv[1], sys.argv[2], sys.argv[3]
cut = pd.Timestamp(cutoff)

started = time.perf_counter()
out = subprocess.run(
    [binary, "backtest", "--orders", csv, "--at", cutoff, "--horizon", "90",
     "--out", ".local/bench-scale", "--json"],
    check=True, capture_output=True, text=True).stdout
winback_run = time.perf_counter() - started
wb = json.loads(out)

df = pd.read_csv(csv, usecols=["customer_id", "ordered_at"])
df["day"] = pd.to_datetime(df["ordered_at"]).dt.tz_localize(None).dt.normalize()
cal = df[df["day"] < cut]
per = cal.groupby("customer_id")["day"]
first, last = per.min(), per.max()
x = (per.nunique() - 1).astype(float).values
tx = (last - first).dt.days.astype(float).values
T = (cut - first).dt.days.astype(float).values

f = ModifiedBetaGeoFitter(penalizer_coef=0.0)
started = time.perf_counter()
f.fit(x, tx, T)
lifetimes_seconds = time.perf_counter() - started


def mbg_ll(r, alpha, a, b):
    """MBG/NBD log-likelihood per customer (Batislam et al. 2007), as both tools define it."""
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x + 1) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
    return float(np.mean(a1 + a2 + np.logaddexp(a3, a4)))


wp = wb["fit"]["params"]
lp = f.params_
ll_winback = mbg_ll(wp["r"], wp["alpha"], wp["a"], wp["b"])
ll_lifetimes = mbg_ll(lp["r"], lp["alpha"], lp["a"], lp["b"])
purchase = wb["purchase_fit_seconds"]
print(f"Customers at {cutoff}: {len(x):,} (winback read {wb['fit']['customers']:,}), "
      f"{int((x > 0).sum()):,} with a repeat order")
print(f"- winback MBG/NBD fit {purchase:.3f} s, lifetimes ModifiedBetaGeoFitter {lifetimes_seconds:.3f} s: "
      f"winback {lifetimes_seconds / purchase:.1f}x faster (target: at least 5x)")
print(f"- with the spend model as well: winback {wb['fit_seconds']:.3f} s, "
      f"{lifetimes_seconds / wb['fit_seconds']:.1f}x lifetimes' purchase fit alone")
print(f"- log-likelihood per customer: winback {ll_winback:.7f}, lifetimes {ll_lifetimes:.7f} "
      f"({'equal or better' if ll_winback >= ll_lifetimes - 1e-6 else 'WORSE'})")
print(f"- parameters: winback r {wp['r']:.4f}, alpha {wp['alpha']:.3f}, a {wp['a']:.4f}, b {wp['b']:.4f}; "
      f"lifetimes r {lp['r']:.4f}, alpha {lp['alpha']:.3f}, a {lp['a']:.4f}, b {lp['b']:.4f}")
print(f"- the whole `winback backtest` run (reading {len(df):,} orders, fit, scores, report): {winback_run:.1f} s")
