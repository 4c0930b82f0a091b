"""winback's uplift model against reference uplift learners on social_pressure, one postcard at a time.

    .local/venv/bin/python infra/uplift/compare.py WINBACK_BINARY DATA.csv.gz WORKDIR [--markdown FILE]

For each postcard arm (treated = that postcard, holdout = Control) the people are split at random
(seed 20260601) into a training half and a test half. Households are not identified in the file,
so members of one household can fall on both sides; every model sees the same split, so the
comparison is fair, but the absolute figures are slightly optimistic for all of them.

Each model is fitted on the training half and scores the test half; one function (qini below,
the same definition as `winback uplift fit` prints) computes every model's Qini coefficient on
the test half. Fit times are wall-clock seconds of the fit alone (winback: the whole
`winback uplift fit` run, reading the CSV and cross-fitting included), on one core.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SEED = 20260601
FEATURES = ["sex", "yob", "g2000", "g2002", "g2004", "p2000", "p2002", "p2004", "hh_size"]
ARMS = ["Civic Duty", "Hawthorne", "Self", "Neighbors"]


def qini(score, treated, y):
    """Area between the Qini curve and the random line, over the average effect.

    The curve at the top i people (highest score first) is i * (mean y of its treated - mean y
    of its holdout) / n; the random line goes straight to the curve's end. 0 is a random ranking.
    """
    order = np.argsort(-score, kind="stable")
    t = treated[order].astype(float)
    yy = y[order].astype(float)
    n = len(yy)
    nt = np.cumsum(t)
    nc = np.cumsum(1 - t)
    yt = np.cumsum(yy * t)
    yc = np.cumsum(yy * (1 - t))
    with np.errstate(divide="ignore", invalid="ignore"):
        inc = np.where((nt > 0) & (nc > 0), yt / nt - yc / nc, 0.0)
    i = np.arange(1, n + 1)
    curve = i * inc / n
    everyone = curve[-1]
    random = i / n * everyone
    area = np.sum(curve - random) / n
    return area / abs(everyone)


def versus_best(scores, treated, y, rounds=200):
    """winback's Qini minus the best reference's on the test half, with a bootstrap 95% interval
    (people resampled with replacement, every model's scores on the same resample)."""
    refs = [n for n in ("causalml", "sklearn") if n in scores]
    if "winback" not in scores or not refs:
        return None
    best = max(refs, key=lambda n: qini(scores[n], treated, y))
    diff = qini(scores["winback"], treated, y) - qini(scores[best], treated, y)
    rng = np.random.default_rng(SEED)
    draws = []
    for _ in range(rounds):
        i = rng.integers(0, len(y), len(y))
        draws.append(qini(scores["winback"][i], treated[i], y[i]) - qini(scores[best][i], treated[i], y[i]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return best, diff, low, high


def numeric(df):
    x = pd.DataFrame(index=df.index)
    x["female"] = (df["sex"] == "female").astype(int)
    x["yob"] = df["yob"]
    for c in ["g2000", "g2002", "g2004", "p2000", "p2002", "p2004"]:
        x[c] = (df[c].str.lower() == "yes").astype(int)
    x["hh_size"] = df["hh_size"]
    return x


def run_winback(binary, work, train, test):
    tr = os.path.join(work, "train.csv")
    te = os.path.join(work, "test.csv")
    model = os.path.join(work, "model.json")
    for part, path in ((train, tr), (test, te)):
        out = part[FEATURES].copy()
        out.insert(0, "customer_id", part.index.astype(str))
        out.insert(1, "group", np.where(part["w"] == 1, "treated", "holdout"))
        out.insert(2, "ordered", part["y"])
        out.insert(3, "revenue", 0)
        out.to_csv(path, index=False)
    started = time.perf_counter()
    subprocess.run(
        [binary, "uplift", "fit", "--experiment", tr, "--out", model,
         "--report", os.path.join(work, "report"), "--json"],
        check=True, stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    scored = subprocess.run(
        [binary, "uplift", "score", "--model", model, "--customers", te, "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    by_id = {s["customer_id"]: s["uplift"] for s in json.loads(scored)}
    return np.array([by_id[str(i)] for i in test.index]), seconds


def run_sklearn(train, test):
    from sklearn.ensemble import HistGradientBoostingClassifier

    xtr, xte = numeric(train), numeric(test)
    started = time.perf_counter()
    models = {}
    for w in (0, 1):
        m = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=SEED)
        m.fit(xtr[train["w"] == w], train["y"][train["w"] == w])
        models[w] = m
    seconds = time.perf_counter() - started
    score = models[1].predict_proba(xte)[:, 1] - models[0].predict_proba(xte)[:, 1]
    return score, seconds


def run_causalml(train, test):
    from causalml.inference.tree import UpliftRandomForestClassifier

    xtr, xte = numeric(train), numeric(test)
    arm = np.where(train["w"] == 1, "treated", "control")
    started = time.perf_counter()
    m = UpliftRandomForestClassifier(
        control_name="control", n_estimators=100, max_depth=6, min_samples_leaf=200,
        random_state=SEED, n_jobs=1,
    )
    m.fit(xtr.values, treatment=arm, y=train["y"].values)
    seconds = time.perf_counter() - started
    score = np.asarray(m.predict(xte.values)).reshape(len(xte), -1)[:, 0]
    return score, seconds


def main():
    binary, data, work = sys.argv[1], sys.argv[2], sys.argv[3]
    markdown = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
    os.makedirs(work, exist_ok=True)
    df = pd.read_csv(data)
    df["treatment"] = df["treatment"].str.strip()
    df["y"] = (df["voted"] == "Yes").astype(int)
    rng = np.random.default_rng(SEED)
    df["half"] = rng.integers(0, 2, len(df))
    rows = []
    for arm in ARMS:
        part = df[df["treatment"].isin([arm, "Control"])].copy()
        part["w"] = (part["treatment"] == arm).astype(int)
        train, test = part[part["half"] == 0], part[part["half"] == 1]
        row = {"arm": arm, "train": len(train), "test": len(test),
               "effect": test[test.w == 1].y.mean() - test[test.w == 0].y.mean()}
        scores = {}
        for name, fit in (
            ("winback", lambda: run_winback(os.path.abspath(binary), work, train, test)),
            ("sklearn", lambda: run_sklearn(train, test)),
            ("causalml", lambda: run_causalml(train, test)),
        ):
            try:
                score, seconds = fit()
                scores[name] = score
                row[name] = (qini(score, test["w"].values, test["y"].values), seconds)
            except Exception as e:  # a reference that fails is reported, not fatal
                print(f"{arm}: {name} failed: {e}", file=sys.stderr)
                row[name] = None
        row["vs_best"] = versus_best(scores, test["w"].values, test["y"].values)
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)

    def cell(v):
        return "failed" if v is None else f"{v[0]:.3f}"

    def secs(v):
        return "–" if v is None else f"{v[1]:.1f} s"

    release = "/release/" in binary

    def gap(v):
        if v is None:
            return "–"
        best, diff, low, high = v
        return f"{diff:+.3f} ({low:+.3f} to {high:+.3f}) vs {best}"

    lines = [
        "| postcard | train / test people | effect on the test half | winback Qini | causalml uplift forest Qini | scikit-learn two-model GB Qini | winback − best reference (95% bootstrap) | fit time winback / causalml / sklearn |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        times = (
            f"{secs(r['winback'])} / {secs(r['causalml'])} / {secs(r['sklearn'])}"
            if release
            else "not measured (winback debug build)"
        )
        lines.append(
            f"| {r['arm']} | {r['train']:,} / {r['test']:,} | {r['effect'] * 100:+.1f} points | "
            f"{cell(r['winback'])} | {cell(r['causalml'])} | {cell(r['sklearn'])} | "
            f"{gap(r['vs_best'])} | {times} |"
        )
    def total(name):
        return sum(r[name][1] for r in rows if r[name] is not None)

    ratios = ", ".join(
        f"{name} {total(name) / total('winback'):.2f}×"
        for name in ("causalml", "sklearn")
        if release and all(r[name] is not None for r in rows) and total("winback") > 0
    )
    table = "\n".join(lines)
    print(table)
    print(f"fit time over winback's, all arms: {ratios or 'n/a'}")
    million = fit_million(os.path.abspath(binary), work, df) if release else None
    print(f"winback uplift fit on 1,000,000 rows: {million or 'n/a'}")
    verdict = versus_text(rows)
    print(verdict)
    if markdown:
        put_section(markdown, section(table, ratios, million, verdict))


def versus_text(rows):
    """What the bootstrap intervals of winback against the best reference say, over the arms."""
    gaps = [(r["arm"], r["vs_best"]) for r in rows if r["vs_best"] is not None]
    above = [a for a, (_, _, low, _) in gaps if low > 0]
    below = [a for a, (_, _, _, high) in gaps if high < 0]
    if not above and not below:
        return ("No arm's difference between winback and the best reference is clear of its "
                "bootstrap interval: on this data winback is level with the references, not shown "
                "to be better or worse.")
    parts = []
    if above:
        parts.append(f"winback is above the best reference on {', '.join(above)}")
    if below:
        parts.append(f"below it on {', '.join(below)}")
    return "Clear of the bootstrap interval: " + "; ".join(parts) + "; level elsewhere."



def fit_million(binary, work, df):
    """Seconds of `winback uplift fit` on 1,000,000 rows: the file's people (any postcard against
    no mail) drawn with replacement (seed SEED), each draw a customer of its own; then the same
    rows with a `noise` column (uniform, 1,000 values), so that almost no two rows share their
    bins and the booster cannot merge customers."""
    rng = np.random.default_rng(SEED)
    rows = df.iloc[rng.integers(0, len(df), 1_000_000)]
    out = rows[FEATURES].copy().reset_index(drop=True)
    out.insert(0, "customer_id", np.arange(len(out)).astype(str))
    out.insert(1, "group", np.where(rows["treatment"].values == "Control", "holdout", "treated"))
    out.insert(2, "ordered", rows["y"].values)
    out.insert(3, "revenue", 0)
    times = []
    for name, frame in (
        ("million", out),
        ("million-noise", out.assign(noise=rng.integers(0, 1000, len(out)))),
    ):
        path = os.path.join(work, f"{name}.csv")
        frame.to_csv(path, index=False)
        started = time.perf_counter()
        subprocess.run(
            [binary, "uplift", "fit", "--experiment", path, "--out",
             os.path.join(work, f"{name}.json"), "--report", os.path.join(work, f"{name}-report"),
             "--json"],
            check=True, stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return (f"{times[0]:.1f} s; with a noise column that makes almost every row distinct, "
            f"{times[1]:.1f} s")


def section(table, ratios, million, verdict):
    return f"""## uplift

`infra/bench uplift`: winback's uplift model (`winback uplift fit`, two gradient-boosted models,
cross-fitted) against two references on the social-pressure mailing experiment (Gerber, Green &
Larimer 2008, 344,084 people; `shared/data/social_pressure.csv.gz`), one postcard at a time
(treated = that postcard, holdout = no mail). Each arm's people are split at random
(seed {SEED}) into a training half and a test half; every model is fitted on the same training
half and scores the same test half, and one formula computes each model's Qini coefficient there:
the area between the Qini curve and the random line over the average effect (0 = no better than
random; higher is better; `infra/uplift/compare.py`). The references: causalml's
`UpliftRandomForestClassifier` (100 trees, depth 6, leaves of 200 or more) and a scikit-learn
two-model `HistGradientBoostingClassifier` (100 iterations each), each on one thread
(`infra/bench uplift` also pins the run to one core with `taskset`). Features: sex, year of
birth, the six past votes, household size.

Households are not identified in the file, so the split is by person: members of one household
can be on both sides, and a postcard went to a whole household. Every model gets the same split,
so the comparison between them is fair, but the absolute figures are somewhat optimistic for all.
The Qini coefficients are noisy: the effects are a few points, and each test half holds about
19,000 people who got the postcard and 95,000 who got nothing.

{table}

{verdict}

Fit time over winback's, summed over the arms: {ratios or "not measured: this run used a debug build of winback, whose times say nothing of the release binary's"} (winback's time is the whole
`winback uplift fit` run: reading the CSV, two cross-fitting folds and the final fit, and the
report).

A fit on 1,000,000 rows (the file's people, any postcard against no mail, drawn with
replacement, seed {SEED}), the whole `winback uplift fit` run on one core: {million or "not measured: this run used a debug build of winback"} (target: under 10 s). Each booster merges
customers whose bins are the same in every feature into one weighted row (the trees cannot tell
them apart, so the fit is the same); this file's nine features take few values, so its million rows
are about 13,000 distinct ones. The noise column (1,000 values in 63 bins) shows the time when rows
rarely repeat.

"""


def put_section(path, text):
    """Replaces the file's `## uplift` section, or adds it before `## Reproduce`."""
    with open(path) as f:
        md = f.read()
    start = md.find("## uplift\n")
    if start >= 0:
        end = md.find("\n## ", start + 1)
        md = md[:start] + text + (md[end + 1:] if end >= 0 else "")
    else:
        at = md.find("## Reproduce")
        at = at if at >= 0 else len(md)
        md = md[:at] + text + "\n" + md[at:]
    with open(path, "w") as f:
        f.write(md)


if __name__ == "__main__":
    main()
