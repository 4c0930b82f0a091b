"""A large shop's order history as a winback orders CSV, drawn from the MBG/NBD process itself.

Usage: python infra/model/generate_orders.py OUT.csv [CUSTOMERS] [SEED]   (needs numpy)

CUSTOMERS (default 500,000) make their first order on a day spread evenly over 2023-01-01 to
2025-12-31; while active each orders at rate λ ~ Gamma(r, α) per day and after each order drops
out with probability p ~ Beta(a, b), with the parameters fitted on CDNOW (the shipped prior:
r 0.64, α 51.1, a 0.82, b 1.24). Orders stop at 2025-12-31. One order per day at most (the
model's purchase occasions); amounts around 25.00. Seeded, so the same file every time.
"""
import sys

import numpy as np

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 7
rng = np.random.default_rng(seed)
r, alpha, a, b = 0.6391, 51.114, 0.8212, 1.2402
start = np.datetime64("2023-01-01")
span = 3 * 365
first = rng.integers(0, span, n)
lam = rng.gamma(r, 1.0 / alpha, n)
p = rng.beta(a, b, n)
orders = 0
with open(out, "w") as w:
    w.write("customer_id,email,ordered_at,amount,currency\n")
    for i in range(n):
        day = int(first[i])
        days = [day]
        # MBG/NBD: a drop-out chance after every occasion, the first included.
        while rng.random() >= p[i] and lam[i] > 0:
            day += max(1, int(np.ceil(rng.exponential(1.0 / lam[i]))))
            if day >= span:
                break
            days.append(day)
        amount = rng.gamma(6.0, 25.0 / 6.0)
        for d in days:
            when = (start + np.timedelta64(d, "D")).astype(str)
            w.write(f"big-{i:07d},c{i}@example.com,{when}T12:00:00Z,{amount:.2f},EUR\n")
        orders += len(days)
print(f"{out}: {n} customers, {orders} orders", file=sys.stderr)
