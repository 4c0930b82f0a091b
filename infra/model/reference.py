"""Reference values for shared::domain::model's tests, from Python `lifetimes` (parameters set by hand, days).

Run: python3 -m venv .local/py14 && .local/py14/bin/pip install lifetimes && .local/py14/bin/python infra/model/reference.py
"""
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

PARAMS = dict(r=0.25, alpha=30.0, a=0.8, b=2.5)
CASES = [(0, 0.0, 40.0), (1, 10.0, 100.0), (3, 60.0, 90.0), (3, 60.0, 300.0), (12, 200.0, 210.0)]

for name, cls in [("BG", BetaGeoFitter), ("MBG", ModifiedBetaGeoFitter)]:
    f = cls()
    f.params_ = pd.Series(PARAMS)
    print(f"    const REFERENCE_{name}: &[(u32, f64, f64, f64, f64, f64)] = &[")
    for x, tx, t in CASES:
        pa = float(np.ravel(f.conditional_probability_alive(x, tx, t))[0])
        e90 = float(np.ravel(f.conditional_expected_number_of_purchases_up_to_time(90, x, tx, t))[0])
        nll = cls._negative_log_likelihood(
            np.log([PARAMS["r"], PARAMS["alpha"], PARAMS["a"], PARAMS["b"]]),
            np.array([x]), np.array([tx]), np.array([t]), np.array([1.0]), 0.0)
        print(f"        ({x}, {tx:.1f}, {t:.1f}, {pa:.12e}, {e90:.12e}, {-float(np.ravel(nll)[0]):.12e}),")
    print("    ];")
