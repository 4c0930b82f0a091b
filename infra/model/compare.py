"""Side by side on CDNOW: winback's fitted model, the days-since-last-order rule, and `lifetimes`'
BG/NBD and MBG/NBD fitted on the same calibration data.

Usage: python infra/model/compare.py WINBACK_BINARY CDNOW_CSV   (a Python that has `lifetimes`)
Prints a Markdown table. Calibration: orders to 1997-09-30; outcome: no order in the next 90 / 180
days; AUC of each score for ranking the gone above the returning; all customers and those with
at least 3 orders before the cut-off.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from scipy.stats import rankdata
import lifetimes
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

binary, csv = sys.argv[1], sys.argv[2]
CUT = pd.Timestamp("1997-10-01")


def auc(score, positive):
    score = np.asarray(score, dtype=float)
    positive = np.asarray(positive, dtype=bool)
    ranks = rankdata(score)
    n1, n0 = positive.sum(), (~positive).sum()
    return (ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


src = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_master.txt")
df = pd.read_csv(src, sep=r"\s+", dtype={"customer_id": str, "date": str})
df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
cal = df[df["date"] < CUT]
per = cal.groupby("customer_id")
first, last = per["date"].min(), per["date"].max()
occasions = cal.drop_duplicates(["customer_id", "date"]).groupby("customer_id").size()
orders = per.size()
x = (occasions - 1).astype(float)
tx = (last - first).dt.days.astype(float)
T = (CUT - first).dt.days.astype(float)

fits = {}
for name, cls in [("BG/NBD", BetaGeoFitter), ("MBG/NBD", ModifiedBetaGeoFitter)]:
    f = cls(penalizer_coef=0.0)
    t0 = time.perf_counter()
    f.fit(x, tx, T)
    fits[name] = (f, time.perf_counter() - t0)

rows = []
for horizon in (90, 180):
    out = subprocess.run(
        [binary, "backtest", "--orders", csv, "--at", "1997-10-01", "--horizon", str(horizon),
         "--out", f".local/bench-backtest-{horizon}", "--json"],
        check=True, capture_output=True, text=True).stdout
    wb = json.loads(out)
    hold = df[(df["date"] >= CUT) & (df["date"] < CUT + pd.Timedelta(days=horizon))]
    gone = ~x.index.isin(hold["customer_id"].unique())
    recency = T - tx
    for group, mask, wrow in [("all customers", np.ones(len(x), bool), wb["rows"][0]),
                              ("≥ 3 orders", (orders >= 3).values, wb["rows"][1])]:
        r = {"group": f"{group}, {horizon} d", "customers": int(mask.sum()),
             "winback P(no order)": wrow["auc_no_order"], "winback E[orders]": wrow["auc_expected"], "winback 1-P(active)": wrow["auc_p_active"],
             "recency (own)": auc(recency[mask], gone[mask]),
             "recency (winback)": wrow["auc_recency"]}
        for name, (f, _) in fits.items():
            e = f.conditional_expected_number_of_purchases_up_to_time(horizon, x[mask], tx[mask], T[mask])
            r[f"lifetimes {name} expected purchases"] = auc(-np.asarray(e), gone[mask])
            pa = f.conditional_probability_alive(x[mask], tx[mask], T[mask])
            r[f"lifetimes {name} 1-P(alive)"] = auc(1 - np.asarray(pa), gone[mask])
        rows.append(r)
    flagged = wb["flagged"]
    rows[-2]["flagged"] = (f"{flagged['flagged']} ({flagged['share_flagged']*100:.1f}%); came back anyway "
                           f"{flagged['came_back_anyway']*100:.1f}% vs recency rule {flagged['recency_came_back_anyway']*100:.1f}%")
    rows[-2]["winback fit s"] = wb["fit_seconds"]
    rows[-2]["winback evals"] = wb["evaluations_per_second"]
    rows[-2]["winback moments"] = wb["lapse_moments_per_second"]

cols = ["group", "customers", "winback E[orders]", "winback P(no order)", "winback 1-P(active)", "recency (own)",
        "lifetimes BG/NBD expected purchases", "lifetimes BG/NBD 1-P(alive)",
        "lifetimes MBG/NBD expected purchases", "lifetimes MBG/NBD 1-P(alive)"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
for r in rows:
    print("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
print()
for r in rows:
    if "flagged" in r:
        print(f"- {r['group']}: flagged {r['flagged']}; winback fit {r['winback fit s']:.3f} s, "
              f"{r['winback evals']:,.0f} customer evaluations (P(active), chance of an order, 12-month value) "
              f"and {r['winback moments']:,.0f} lapse moments per second")
for name, (f, secs) in fits.items():
    p = f.params_
    print(f"- lifetimes {name}: r {p['r']:.4f}, alpha {p['alpha']:.3f}, a {p['a']:.4f}, b {p['b']:.4f} (days); fit {secs:.2f} s")

# Synthetic customers whose churn moments are known: detection delay against false alarms.
out = subprocess.run([binary, "backtest", "--synthetic", "20000", "--seed", "42", "--json"],
                     check=True, capture_output=True, text=True).stdout
det = json.loads(out)
print()
print(f"Synthetic customers (the simulator's behaviour model, seed 42): {det['customers']} "
      f"({det['stopped']} stopped buying, {det['buying']} still buying)")
print()
print("| rule | false alarms (still buying, flagged before their next order) | median delay after stopping | mean delay | stopped customers found within 90 days |")
print("|---|---|---|---|---|")
for r in det["rules"]:
    print(f"| {r['rule']} | {r['false_alarms']*100:.1f}% | {r['median_delay_days']:.1f} d | "
          f"{r['mean_delay_days']:.1f} d | {r['detected_within_90_days']*100:.1f}% |")
for k in det.get("kinds", []):
    for r in k["rules"]:
        print(f"| {k['kind']}: {r['rule']} | {r['false_alarms']*100:.1f}% | {r['median_delay_days']:.1f} d | "
              f"{r['mean_delay_days']:.1f} d | {r['detected_within_90_days']*100:.1f}% |")
