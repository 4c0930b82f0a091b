"""CDNOW (shipped in the PyPI package `lifetimes`) as a winback orders CSV.

CDNOW_master.txt: customer id, date YYYYMMDD, number of CDs, dollars; one line per order.
Usage: python infra/model/cdnow_to_csv.py OUT.csv   (run with a Python that has `lifetimes`)
"""
import os
import sys

import lifetimes

src = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_master.txt")
out = sys.argv[1] if len(sys.argv) > 1 else "cdnow.csv"
with open(src) as f, open(out, "w") as w:
    w.write("customer_id,email,ordered_at,amount,currency\n")
    for line in f:
        parts = line.split()
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        cid, date, _cds, dollars = parts
        when = f"{date[:4]}-{date[4:6]}-{date[6:]}T12:00:00Z"
        w.write(f"cdnow-{cid},c{cid}@example.com,{when},{float(dollars):.2f},USD\n")
print(out)
