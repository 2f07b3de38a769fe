#!/usr/bin/env python3
"""Type-I error and power of the differential tests on simulated sparse CTC data.

    .venv/bin/python benchmarks/bench_differential.py                 # ~2-4 min on one core
    .venv/bin/python benchmarks/bench_differential.py --reps 4000 --lmm-reps 2000

A script, not a test. Prints Markdown tables (copied into benchmarks/README.md,
section "Differential tests"):

1. Two groups, per gene: rejection rate at α 0.05 and 0.01 over ``--reps`` null
   replicates in every scenario (8 vs 25 and 15 vs 15 samples; 0, 30, 60 %
   non-detects; normal, on/off mixture, unequal variances), then power on planted
   effects. Tests: the chosen primary test "Welch cal on" (Welch on the detected values
   left after the label-blind "off" call, robust z > 3.5 above the gene's median, as
   ``differential.call_on``, its p size-calibrated for small groups,
   ``robust_tests.welch_calibrated``), plain Welch and Yuen 10 % on the same values,
   the candidates on all detected values (Yuen 10 % and 20 %, Brunner–Munzel, Mann–Whitney, Welch), and
   the old ones on every sample
   (Welch on imputed values, Mann–Whitney with non-detects tied below every
   detected value, the two-part Fisher + Welch-on-detected test).
   A detected-only test needs ``--min-detected`` detected samples in each group
   (the workflow's ``differential.min_detected``, default 3); its rate is over the
   replicates where it ran (the share is printed).
2. Mixed model ``ΔCq ~ time × group + (1 | patient)`` (3 time points, 20 % of the
   follow-up draws missing, 10 and 15 patients): Wald χ² vs the F reference with
   between–within denominator df that the workflow uses.

Every test is the code the workflow runs (``ctc_qpcr.robust_tests``,
``ctc_qpcr.differential_time``); all draws come from one seeded generator.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from ctc_qpcr import robust_tests as rt  # noqa: E402
from ctc_qpcr import stats  # noqa: E402
from ctc_qpcr.differential_time import fit_time_lmm  # noqa: E402

IMPUTED = 14.0  # ΔCq of a non-detect (LOD + 1 − normaliser), normaliser spread 0.3
OFF_SHIFT = (8.0, 14.0)  # an "off" sample: background only, 8-14 cycles later
OFF_CENSORED = 0.7  # ... and then usually above the LOD (a non-detect)


def draw_group(rng, reps: int, n: int, nd: float, dist: str, sd: float = 1.0, shift: float = 0.0):
    """(detected-only values with NaN for non-detects, detected mask) for one group."""
    x = rng.normal(shift, sd, (reps, n))
    detected = rng.uniform(size=(reps, n)) >= nd
    if dist == "onoff":
        rate = rng.uniform(0.0, 0.15, (reps, 1))
        off = rng.uniform(size=(reps, n)) < rate
        x = x + np.where(off, rng.uniform(*OFF_SHIFT, (reps, n)), 0.0)
        detected &= ~(off & (rng.uniform(size=(reps, n)) < OFF_CENSORED))
    return np.where(detected, x, np.nan), detected


def old_tests(rng, a, da, b, db, min_detected: int) -> dict[str, np.ndarray]:
    """The previous primary tests, on every sample (imputed / tied / two-part)."""
    ia = np.where(da, a, IMPUTED + rng.normal(0, 0.3, a.shape))
    ib = np.where(db, b, IMPUTED + rng.normal(0, 0.3, b.shape))
    top = 1e6  # tied above every detected ΔCq (below every detected level)
    out = {
        "welch_imputed": rt.welch(ia, ib)[0].p,
        "mw_tied": rt.mann_whitney(np.where(da, a, top), np.where(db, b, top)).p,
    }
    wd = rt.welch(a, b)[0].p
    cache: dict[tuple, float] = {}
    keys = np.stack([da.sum(1), db.sum(1)], axis=1)
    fish = np.empty(len(keys))
    for i, (ka, kb) in enumerate(map(tuple, keys)):
        if (ka, kb) not in cache:
            cache[(ka, kb)] = stats.fisher_detection(int(ka), a.shape[1], int(kb), b.shape[1]).p
        fish[i] = cache[(ka, kb)]
    from scipy.stats import chi2

    stat = -2 * (np.log(fish) + np.log(np.where(np.isfinite(wd), wd, 1.0)))
    k = np.where(np.isfinite(wd), 4, 2)
    out["hurdle"] = chi2.sf(stat, k)
    return out


def new_tests(a, b, min_detected: int) -> dict[str, np.ndarray]:
    enough = (np.isfinite(a).sum(1) >= min_detected) & (np.isfinite(b).sum(1) >= min_detected)
    out = {f"{name}_detected": np.where(enough, fn(a, b).p, np.nan) for name, fn in rt.TESTS.items()}
    # the workflow's primary test: "off" values called label-blind over both groups, Welch on the rest
    off = rt.off_mask(np.concatenate([a, b], axis=1))
    a_on = np.where(off[:, : a.shape[1]], np.nan, a)
    b_on = np.where(off[:, a.shape[1] :], np.nan, b)
    enough = (np.isfinite(a_on).sum(1) >= min_detected) & (np.isfinite(b_on).sum(1) >= min_detected)
    out["welch_cal_on"] = np.where(enough, rt.welch_calibrated(a_on, b_on).p, np.nan)
    out["welch_on"] = np.where(enough, rt.welch(a_on, b_on)[0].p, np.nan)
    out["yuen_on"] = np.where(enough, rt.yuen(a_on, b_on, 0.1).p, np.nan)
    return out


def scenario(rng, reps, na, nb, nd, dist, min_detected, effect=0.0):
    sd_a = 2.0 if dist == "unequal_var" else 1.0
    a, da = draw_group(rng, reps, na, nd, "onoff" if dist == "onoff" else "normal", sd=sd_a, shift=-effect)
    b, db = draw_group(rng, reps, nb, nd, "onoff" if dist == "onoff" else "normal")
    out = new_tests(a, b, min_detected)
    out.update(old_tests(rng, a, da, b, db, min_detected))
    return out


def rates(pvals: dict[str, np.ndarray], alpha: float) -> dict[str, tuple[float, float]]:
    res = {}
    for name, p in pvals.items():
        ran = np.isfinite(p)
        res[name] = (float((p[ran] < alpha).mean()) if ran.any() else float("nan"), float(ran.mean()))
    return res


ORDER = [
    "welch_cal_on",
    "welch_on",
    "yuen_on",
    "yuen_detected",
    "yuen20_detected",
    "brunner_munzel_detected",
    "mann_whitney_detected",
    "welch_detected",
    "welch_imputed",
    "mw_tied",
    "hurdle",
]
SHORT = {
    "welch_cal_on": "**Welch cal on**",
    "welch_on": "Welch on",
    "yuen_on": "Yuen 10 % on",
    "brunner_munzel_detected": "BM det",
    "mann_whitney_detected": "MW det",
    "yuen_detected": "Yuen 10 % det",
    "yuen20_detected": "Yuen 20 % det",
    "welch_detected": "Welch det",
    "welch_imputed": "Welch imp",
    "mw_tied": "MW tied",
    "hurdle": "two-part",
}


def null_table(rng, reps: int, min_detected: int) -> tuple[str, dict]:
    head = "| n A vs B | non-detects | null | " + " | ".join(SHORT[t] for t in ORDER) + " | run (det) |"
    lines = [head, "|" + "---|" * (len(ORDER) + 4)]
    worst: dict[str, list[float]] = {t: [] for t in ORDER}
    for na, nb in ((8, 25), (15, 15)):
        for nd in (0.0, 0.3, 0.6):
            for dist in ("normal", "onoff", "unequal_var"):
                p = scenario(rng, reps, na, nb, nd, dist, min_detected)
                r05, r01 = rates(p, 0.05), rates(p, 0.01)
                cells = []
                for t in ORDER:
                    cells.append(f"{r05[t][0]:.3f} / {r01[t][0]:.3f}")
                    worst[t] += [r05[t][0], r01[t][0]]
                ran = r05["welch_cal_on"][1]
                lines.append(
                    f"| {na} vs {nb} | {int(nd * 100)} % | {dist} | " + " | ".join(cells) + f" | {ran:.2f} |"
                )
    return "\n".join(lines), worst


def power_table(rng, reps: int, min_detected: int) -> str:
    head = "| n A vs B | non-detects | data | effect | " + " | ".join(SHORT[t] for t in ORDER) + " |"
    lines = [head, "|" + "---|" * (len(ORDER) + 4)]
    for na, nb in ((8, 25), (15, 15)):
        for nd in (0.0, 0.3):
            for dist in ("normal", "onoff"):
                for eff in (1.0, 1.5):
                    r = rates(scenario(rng, reps, na, nb, nd, dist, min_detected, effect=eff), 0.05)
                    # power over all replicates (a test that could not run did not reject)
                    cells = [f"{r[t][0] * r[t][1]:.3f}" for t in ORDER]
                    lines.append(
                        f"| {na} vs {nb} | {int(nd * 100)} % | {dist} | {eff} | " + " | ".join(cells) + " |"
                    )
    return "\n".join(lines)


def lmm_table(rng, reps: int) -> str:
    import pandas as pd

    lines = [
        "| patients | missing follow-up draws | test | α 0.05 time | α 0.01 time | α 0.05 time×group | α "
        "0.01 time×group |",
        "|---|---|---|---|---|---|---|",
    ]
    for n_pat in (10, 15):
        res = {"wald": [], "f": []}
        for _ in range(reps):
            pt = np.repeat(np.arange(n_pat), 3)
            tp = np.tile(np.arange(3), n_pat)
            grp = (pt % 2).astype(int)
            y = rng.normal(0, 1, n_pat)[pt] + rng.normal(0, 1, pt.size)
            keep = (tp == 0) | (rng.uniform(size=pt.size) >= 0.2)
            frame = pd.DataFrame({"y": y[keep], "tp": tp[keep], "grp": grp[keep], "pt": pt[keep]})
            for ref in res:
                fit = fit_time_lmm(frame, True, reference=ref)
                res[ref].append(fit[:2])
        for ref, vals in res.items():
            v = np.array(vals, float)
            r = [np.nanmean(v[:, j] < a) for j in (0, 1) for a in (0.05, 0.01)]
            label = "Wald χ² (old)" if ref == "wald" else "F, between–within df"
            lines.append(f"| {n_pat} | 20 % | {label} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} |")
    return "\n".join(lines)


def example_power(n_studies: int, first_seed: int = 10000) -> str:
    """Power of the example's design per planted gene (docs/methods.md §15), at the planted-truth level.

    New studies from the generator's model (``make_cohort`` + ``sample_truth`` with the example's
    settings); ΔCq = RNA Cq − mean of the detected reference Cq (LOD 35); the workflow's off call and
    primary test at T0; BH q < 0.1 per comparison. No replicate noise, gDNA or chip offsets: an upper bound.
    """
    from statsmodels.stats.multitest import multipletests

    from ctc_qpcr import differential_two_group as d2
    from ctc_qpcr import simulate_model as sm

    planted = {"response": sm.NONRESPONDER_EFFECTS, "liver": sm.LIVER_EFFECTS}
    found = {(c, g): 0 for c, eff in planted.items() for g in eff}
    all_found, fdp = 0, []
    for seed in range(first_seed, first_seed + n_studies):
        rng = np.random.default_rng(seed)
        assays = sm.make_assays(rng)
        _, study = sm.make_cohort(rng, 45, 1, ("T0", "T1", "T2"), 0.15, 20, 1, 20, n_baseline_only=3)
        rna = sm.sample_truth(rng, study.assign(quantity=np.nan), assays)[0]
        role, genes = assays["role"].to_numpy(), assays["gene"].to_numpy()
        det = np.isfinite(rna) & (rna < sm.LOD)
        dcq = rna - np.nanmean(np.where(det, rna, np.nan)[:, role == "reference"], axis=1)[:, None]
        t0 = ((study["kind"] == "patient") & (study["timepoint"] == "T0")).to_numpy()
        tp = fp = 0
        for comp, flag in (("response", "nonresponder"), ("liver", "liver")):
            g = study[flag].to_numpy(bool)[t0]
            p = []
            for j in np.flatnonzero(role == "target"):
                x, d = dcq[t0, j], det[t0, j]
                on = d & ~rt.off_mask(np.where(d, x, np.nan))[0]
                p.append(d2.two_group_gene(x[g], d[g], x[~g], d[~g], on_a=on[g], on_b=on[~g])["p"])
            p, q = np.array(p), np.full(len(p), np.nan)
            q[np.isfinite(p)] = multipletests(p[np.isfinite(p)], method="fdr_bh")[1]
            hits = set(genes[role == "target"][q < 0.1])
            for gene in planted[comp]:
                found[(comp, gene)] += gene in hits
            tp += len(hits & set(planted[comp]))
            fp += len(hits - set(planted[comp]))
        all_found += tp == len(found)
        fdp.append(fp / max(tp + fp, 1))
    lines = ["| comparison | gene | planted effect (cycles) | power (q < 0.1) |", "|---|---|---|---|"]
    for (comp, gene), k in found.items():
        lines.append(f"| {comp} | {gene} | {planted[comp][gene]} | {k / n_studies:.3f} |")
    lines.append(
        f"\nAll {len(found)} planted genes in one study: {all_found} of {n_studies}; "
        f"false-discovery proportion > 0.2 in {np.mean(np.array(fdp) > 0.2):.3f} of the studies."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=4000, help="null replicates per scenario (default 4000)")
    ap.add_argument(
        "--power-reps", type=int, default=2000, help="replicates per power scenario (default 2000)"
    )
    ap.add_argument(
        "--lmm-reps", type=int, default=2000, help="mixed-model replicates per cohort size (default 2000)"
    )
    ap.add_argument(
        "--min-detected", type=int, default=3, help="detected samples needed per group (default 3)"
    )
    ap.add_argument("--seed", type=int, default=2016)
    ap.add_argument(
        "--calibrate-below",
        type=int,
        default=rt.CALIBRATE_BELOW,
        help=f"calibrate Welch's p when a group has fewer values (default {rt.CALIBRATE_BELOW})",
    )
    ap.add_argument("--skip-lmm", action="store_true")
    ap.add_argument(
        "--example-power",
        type=int,
        default=0,
        metavar="N",
        help="only: power of the example design per planted gene over N generator studies (seeds 10000+)",
    )
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    rt.CALIBRATE_BELOW = a.calibrate_below
    if a.example_power:
        print(f"## Power of the example design ({a.example_power} studies, planted-truth level)\n")
        print(example_power(a.example_power))
        return 0
    t0 = time.perf_counter()
    table, worst = null_table(rng, a.reps, a.min_detected)
    print(f"## Type-I error, two groups ({a.reps} null replicates per row; cell = rate at α 0.05 / 0.01)\n")
    print(table)
    print("\nRange over the 18 null scenarios (α 0.05 | α 0.01), target 0.04-0.06 | ≤ 0.015:\n")
    for t in ORDER:
        v = np.array(worst[t]).reshape(-1, 2)
        ok = (v[:, 0] >= 0.04).all() and (v[:, 0] <= 0.06).all() and (v[:, 1] <= 0.015).all()
        print(
            f"* {SHORT[t]}: {v[:, 0].min():.3f}-{v[:, 0].max():.3f} | {v[:, 1].min():.3f}-{v[:, 1].max():.3f}"
            f" {'(meets the target)' if ok else '(misses the target)'}"
        )
    print(f"\n## Power at α 0.05 ({a.power_reps} replicates; effect = ΔCq shift in cycles, group A higher)\n")
    print(power_table(rng, a.power_reps, a.min_detected))
    if not a.skip_lmm:
        print(f"\n## Mixed model, null ({a.lmm_reps} replicates per row)\n")
        print(lmm_table(rng, a.lmm_reps))
    print(f"\n(seed {a.seed}; {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
