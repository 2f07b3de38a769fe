"""Tests for the metastatic-site classifier (docs/methods.md §7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold, StratifiedKFold

from ctc_qpcr import classifier as C
from ctc_qpcr.plots_classifier import plot_calibration, plot_roc

GENES = [f"G{j:02d}" for j in range(46)]


def planted(seed=2016, n=45, n_liver=20, shift=1.5, signal=True):
    """45 × 46 N(0,1) ΔCq; liver signature = 10 genes shifted `shift` SD in liver samples."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(GENES)))
    liver = np.zeros(n, bool)
    liver[rng.choice(n, n_liver, replace=False)] = True
    if signal:
        X[np.ix_(liver, np.arange(10))] += shift
    ids = [f"P{i:02d}" for i in range(n)]
    sites = ["liver" if liver[i] else "bone" for i in range(n)]
    samples = pd.DataFrame(
        {
            "sample": ids,
            "kind": "patient",
            "patient": ids,
            "timepoint": "T0",
            "sites": sites,
            "subtype": rng.choice(["ER+", "HER2+", "TNBC"], n),
        }
    )
    matrix = pd.DataFrame(X + 8.0, columns=GENES)
    matrix.insert(0, "sample", ids)
    return matrix, samples


def noise_data():
    """§7 sanity data: X ~ N(0,1) 45 × 46, y = 20 positives / 25 negatives, rng(2016)."""
    rng = np.random.default_rng(2016)
    X = rng.normal(size=(45, 46))
    y = np.r_[np.ones(20, int), np.zeros(25, int)]
    ids = [f"N{i:02d}" for i in range(45)]
    samples = pd.DataFrame(
        {"sample": ids, "kind": "patient", "timepoint": "T0", "sites": ["liver" if v else "bone" for v in y]}
    )
    matrix = pd.DataFrame(X, columns=GENES)
    matrix.insert(0, "sample", ids)
    return matrix, samples, X, y


FAST = {"n_repeats": 5, "n_permutations": 100, "min_class": 8}


def fit(matrix, samples, *, strategy="test", n_jobs=1, k_features=(5, 10, "all"), cells=None, **settings):
    """run_classifier with ``classifier:`` settings given in the config's words."""
    options = C.classifier_options(settings)
    return C.run_classifier(
        matrix, samples, options, strategy=strategy, n_jobs=n_jobs, k_features=k_features, cells=cells
    )


@pytest.fixture(scope="module")
def planted_result():
    matrix, samples = planted()
    return matrix, samples, fit(matrix, samples, clinical_columns=("subtype",), **FAST)


@pytest.fixture(scope="module")
def noise_result():
    matrix, samples, X, y = noise_data()
    return X, y, fit(matrix, samples, **FAST)


def _row(res, site, estimator="elasticnet"):
    m = res["metrics"]
    return m[(m["site"] == site) & (m["estimator"] == estimator)].iloc[0]


# ------------------------------------------------------------------ labels


def test_site_labels_multilabel_and_skips():
    samples = pd.DataFrame(
        {
            "sample": [f"S{i}" for i in range(20)],
            "sites": ["liver;bone"] * 9 + ["bone"] * 9 + ["brain", ""],
        }
    )
    Y, skipped = C.site_labels(samples, min_class=8)
    assert list(Y.columns) == ["liver"]  # bone: 18 pos / 1 neg, brain: 1 pos
    assert Y.index.name == "sample" and len(Y) == 19 and int(Y["liver"].sum()) == 9
    reasons = {s["site"]: s for s in skipped}
    assert reasons["bone"]["n_pos"] == 18 and reasons["bone"]["n_neg"] == 1
    assert reasons["brain"]["n_pos"] == 1
    assert "S19" in reasons[""]["reason"]


# ------------------------------------------------------------ performance


def test_planted_liver_signal_detected(planted_result):
    _, _, res = planted_result
    row = _row(res, "liver")
    assert row["auc"] >= 0.8
    assert row["permutation_p"] < 0.01
    assert row["n_pos"] == 20 and row["n_neg"] == 25 and row["n_permutations"] == 100
    assert list(res["metrics"].columns) == C.METRIC_COLUMNS
    assert row["auc_low"] <= row["auc"] <= row["auc_high"]
    prev = _row(res, "liver", "prevalence")
    assert prev["auc"] == pytest.approx(0.5)
    assert np.isfinite(row["clinical_auc"])
    assert row["delta_auc"] == pytest.approx(row["auc"] - row["clinical_auc"])
    feats = res["features"]
    top = feats[(feats.site == "liver") & (feats.estimator == "elasticnet")].nlargest(
        8, "selection_frequency"
    )
    assert set(top["gene"]) <= set(GENES[:10])  # the planted genes are the stable ones
    preds = res["predictions"]
    assert list(preds.columns) == ["sample", "site", "estimator", "probability", "label"]
    assert len(preds[(preds.site == "liver") & (preds.estimator == "elasticnet")]) == 45


def test_noise_not_significant(noise_result):
    _, _, res = noise_result
    row = _row(res, "liver")
    assert 0.35 <= row["auc"] <= 0.65
    assert row["permutation_p"] > 0.05


def test_leaky_selection_beats_honest_on_noise(noise_result):
    X, y, res = noise_result
    # Leaky: top-5 genes chosen on ALL samples, then cross-validated (§7 sanity test).
    Xs = SelectKBest(f_classif, k=5).fit_transform(X, y)
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=5, random_state=2016)
    aucs = []
    folds = list(cv.split(Xs, y))
    for r in range(5):
        oof = np.empty(len(y))
        for train, test in folds[r * 5 : (r + 1) * 5]:
            model = LogisticRegression(class_weight="balanced").fit(Xs[train], y[train])
            oof[test] = model.predict_proba(Xs[test])[:, 1]
        aucs.append(roc_auc_score(y, oof))
    leaky = float(np.mean(aucs))
    honest = _row(res, "liver")["auc"]
    # On this data set: leaky ≈ 0.78, honest nested ≈ 0.64 (5 repeats; 0.62 with 20).
    assert leaky >= 0.75 and leaky >= honest + 0.12, (leaky, honest)


# ------------------------------------------------------- fast paths vs sklearn


def test_fast_preprocessing_matches_pipeline():
    matrix, samples = planted()
    X = matrix[GENES].to_numpy()
    X[3, 5] = np.nan  # imputation inside the fold
    y = (samples["sites"] == "liver").to_numpy(int)
    train, test = np.arange(36), np.arange(36, 45)
    model = C.make_pipeline("elasticnet").named_steps["model"]
    fast = C.fast_fold_proba(model, 10, X[train], y[train], X[test])
    pipe = C.make_pipeline("elasticnet", k=10).fit(X[train], y[train])
    np.testing.assert_allclose(fast, pipe.predict_proba(X[test])[:, 1], rtol=1e-6, atol=1e-8)
    assert C.fast_auc(y[test], fast) == pytest.approx(roc_auc_score(y[test], fast))


def test_fast_grid_search_matches_gridsearchcv():
    matrix, samples = planted()
    X = matrix[GENES].to_numpy()
    y = (samples["sites"] == "liver").to_numpy(int)
    groups = samples["sample"].to_numpy()
    grid = C.param_grid("elasticnet", (5, 10, "all"), 46)
    for train, _ in list(StratifiedKFold(5, shuffle=True, random_state=1).split(X, y))[:2]:
        fast = C.fast_grid_search("elasticnet", grid, X[train], y[train], groups[train])
        gs = GridSearchCV(C.make_pipeline("elasticnet"), grid, scoring="roc_auc", cv=StratifiedKFold(3)).fit(
            X[train], y[train]
        )
        assert fast == gs.best_params_


# ------------------------------------------------------- final model / predict


def test_predict_reproduces_refitted_model_exactly(planted_result, tmp_path):
    matrix, _, res = planted_result
    bundle = res["models"][("liver", "elasticnet")]
    assert bundle["features"] == GENES and bundle["site"] == "liver"
    assert bundle["training_samples"] == sorted(matrix["sample"])
    assert "scikit-learn" in bundle["versions"]
    own = bundle["pipeline"].predict_proba(
        matrix.set_index("sample").loc[bundle["training_samples"], GENES].to_numpy(float)
    )[:, 1]
    out = C.predict(bundle, matrix.sort_values("sample"))
    assert list(out.columns[:3]) == ["sample", "site", "probability"]
    assert (out["probability"].to_numpy() == own).all()
    # Round trip through a skops file (explicit trusted-type allow-list).
    path = tmp_path / "models.skops"
    C.save_models(res["models"], path)
    loaded = C.load_models(path)
    assert set(loaded) == set(res["models"])
    again = C.predict(path, matrix.sort_values("sample"))
    again = again[again["site"] == "liver"]
    assert (again["probability"].to_numpy() == own).all()


# ------------------------------------------------------------ determinism


@pytest.mark.parametrize(
    "seed, n_repeats, n_permutations",
    [(7, 2, 20), (11, 3, 120)],  # the second: more outer folds and permutations than one batch holds
)
def test_identical_results_for_one_and_two_jobs(seed, n_repeats, n_permutations):
    matrix, samples = planted(seed=seed)
    kw = {
        "strategy": "test",
        "n_repeats": n_repeats,
        "n_permutations": n_permutations,
        "k_features": (5, "all"),
    }
    one = fit(matrix, samples, n_jobs=1, **kw)
    two = fit(matrix, samples, n_jobs=2, **kw)
    for key in ("metrics", "predictions", "features"):
        pd.testing.assert_frame_equal(one[key], two[key], check_exact=True)
    assert one["notes"] == two["notes"]


def test_grouped_patients_use_group_folds():
    matrix, samples = planted(seed=11)
    # Second time point per patient; keep all time points -> StratifiedGroupKFold.
    t1 = samples.copy()
    t1["sample"] = t1["sample"] + "_T1"
    t1["timepoint"] = "T1"
    m1 = matrix.copy()
    m1["sample"] = m1["sample"] + "_T1"
    both_s = pd.concat([samples, t1], ignore_index=True)
    both_m = pd.concat([matrix, m1], ignore_index=True)
    res = fit(both_m, both_s, n_repeats=2, n_permutations=10, one_timepoint="", k_features=(5,))
    assert any("StratifiedGroupKFold" in n for n in res["notes"])
    y = (both_s.sort_values("sample")["sites"] == "liver").to_numpy(int)
    groups = both_s.sort_values("sample")["patient"].to_numpy()
    for folds in C.outer_splits(y, groups, 5, 2, 2016):
        for train, test in folds:
            assert not set(groups[train]) & set(groups[test])
    t0 = fit(both_m, both_s, n_repeats=2, n_permutations=0, k_features=(5,))
    assert _row(t0, "liver")["n_pos"] + _row(t0, "liver")["n_neg"] == 45


def test_plots_are_deterministic(planted_result, tmp_path):
    _, _, res = planted_result
    for fn, name in ((plot_roc, "roc"), (plot_calibration, "cal")):
        a, b = tmp_path / f"{name}1.svg", tmp_path / f"{name}2.svg"
        if fn is plot_roc:
            fn(res["predictions"], a, res["metrics"])
            fn(res["predictions"], b, res["metrics"])
        else:
            fn(res["predictions"], a)
            fn(res["predictions"], b)
        assert a.read_bytes() == b.read_bytes()
        assert b"<svg" in a.read_bytes()


# ------------------------------------------------- metrics per §7 (issue 16.7)


def test_fold_auc_worked_example():
    """Two folds: AUC 0.5 and 1.0 -> reported 0.75; pooled probabilities give 6/9."""
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.1, 0.3, 0.8, 0.4])
    folds = [(np.array([3, 4, 5]), np.array([0, 1, 2])), (np.array([0, 1, 2]), np.array([3, 4, 5]))]
    assert C.fold_auc(y, p, folds) == pytest.approx(0.75)
    scores = C.repeat_scores(y, p[None, :], [folds])
    assert scores["auc"] == pytest.approx(0.75)
    assert scores["auc_pooled"] == pytest.approx(6 / 9)
    assert scores["auc_low"] == scores["auc_high"] == pytest.approx(0.75)


def test_reported_auc_is_mean_of_outer_fold_aucs(planted_result):
    """Cross-check with scikit-learn: the clinical baseline refitted fold by fold."""
    from ctc_qpcr.classifier.inputs import clinical_frame
    from ctc_qpcr.classifier.pipeline import clinical_pipeline

    _, samples, res = planted_result
    sheet = samples.sort_values("sample").reset_index(drop=True)
    y = (sheet["sites"] == "liver").to_numpy(int)
    X = clinical_frame(sheet, ["subtype"])
    per_repeat = []
    for folds in C.outer_splits(y, sheet["sample"].to_numpy(), 5, FAST["n_repeats"], 2016):
        aucs = []
        for train, test in folds:
            model = clinical_pipeline(X, 2016).fit(X.iloc[train], y[train])
            aucs.append(roc_auc_score(y[test], model.predict_proba(X.iloc[test])[:, 1]))
        per_repeat.append(np.mean(aucs))
    row = _row(res, "liver", "clinical")
    assert row["auc"] == pytest.approx(np.mean(per_repeat), abs=1e-12)
    assert row["auc_low"] == pytest.approx(np.percentile(per_repeat, 2.5), abs=1e-12)


def test_prevalence_baseline_reads_one_half(planted_result):
    _, _, res = planted_result
    prev = res["metrics"][res["metrics"]["estimator"] == "prevalence"]
    assert len(prev) >= 1
    assert (prev["auc"] == 0.5).all() and (prev["auc_low"] == 0.5).all() and (prev["auc_high"] == 0.5).all()


def test_permutation_statistic_is_named(planted_result):
    _, _, res = planted_result
    row = _row(res, "liver")
    assert row["permutation_statistic"] == (
        "mean outer-fold AUC, 1 repeat(s), fixed hyper-parameters (k=10, C=1.0, l1_ratio=0.5)"
    )
    note = next(n for n in res["notes"] if n.startswith("liver/elasticnet: permutation statistic"))
    assert f"observed {row['permutation_observed']:.4f}" in note
    assert _row(res, "liver", "prevalence")["permutation_statistic"] == ""


def test_roc_legend_shows_metrics_numbers(planted_result, tmp_path):
    _, _, res = planted_result
    labels = plot_roc(res["predictions"], tmp_path / "roc.svg", res["metrics"])
    row = _row(res, "liver")
    assert labels[("liver", "elasticnet")] == (
        f"elasticnet: AUC {row['auc']:.2f} ({row['auc_low']:.2f}-{row['auc_high']:.2f})"
    )
    assert set(labels) == set(zip(res["metrics"]["site"], res["metrics"]["estimator"], strict=True))
    with pytest.raises(ValueError, match="no row for bone/elasticnet, liver/elasticnet"):
        plot_roc(
            res["predictions"],
            tmp_path / "roc2.svg",
            res["metrics"][res["metrics"]["estimator"] != "elasticnet"],
        )


# ------------------------------------- prediction with missing genes (16.10)


def _liver_bundle(res):
    return res["models"][("liver", "elasticnet")]


def test_predict_imputes_a_missing_model_gene_with_the_training_median(planted_result):
    matrix, _, res = planted_result
    bundle = _liver_bundle(res)
    used = C.used_genes(bundle)
    assert 0 < len(used) <= len(GENES)
    gene = used[0]
    new = matrix.sort_values("sample").head(3).copy()
    new.loc[new.index[0], gene] = np.nan
    out = C.predict(bundle, new)
    filled = new.set_index("sample")[GENES].copy()
    filled.iloc[0, GENES.index(gene)] = np.median(matrix[gene])  # median of the 45 training samples
    expected = bundle["pipeline"].predict_proba(filled.to_numpy(float))[:, 1]
    np.testing.assert_allclose(out["probability"], expected, rtol=0, atol=1e-12)
    first = out.iloc[0]
    assert first["imputed_genes"] == gene
    assert first["missing_fraction"] == pytest.approx(1 / len(used))
    assert first["status"] == (
        f"predicted; 1 of {len(used)} model genes without a ΔCq ({gene}) imputed with the training median"
    )
    assert list(out["status"].iloc[1:]) == ["predicted", "predicted"]


def test_predict_ignores_genes_the_model_does_not_use(planted_result):
    matrix, _, res = planted_result
    bundle = _liver_bundle(res)
    unused = [g for g in GENES if g not in C.used_genes(bundle)]
    if not unused:
        pytest.skip("final model uses every gene")
    new = matrix.head(2).copy()
    new[unused[0]] = np.nan
    out = C.predict(bundle, new)
    assert list(out["status"]) == ["predicted", "predicted"]
    assert (out["imputed_genes"] == "").all() and out["probability"].notna().all()


def test_predict_rejects_above_the_missing_share_and_says_why(planted_result):
    matrix, _, res = planted_result
    bundle = _liver_bundle(res)
    used = C.used_genes(bundle)
    n_missing = int(np.floor(0.25 * len(used))) + 1
    new = matrix.head(2).drop(columns=used[:1])  # first used gene not measured in this batch
    new.loc[new.index[0], used[1:n_missing]] = np.nan
    out = C.predict(bundle, new, max_missing_fraction=0.25)
    first, second = out.iloc[0], out.iloc[1]
    assert np.isnan(first["probability"])
    assert first["status"].startswith(f"rejected: {n_missing} of {len(used)} model genes without a ΔCq")
    assert "1 not measured in this batch" in first["status"]
    assert "more than predict.max_missing_fraction 0.25" in first["status"]
    assert first["imputed_genes"] == ";".join(used[:n_missing])
    assert np.isfinite(second["probability"]) and second["imputed_genes"] == used[0]
    everything = matrix.head(1).copy()
    everything[used] = np.nan
    lost = C.predict(bundle, everything, max_missing_fraction=1.0).iloc[0]
    assert np.isnan(lost["probability"]) and lost["status"].endswith("nothing to predict from")


# ------------------------------------------------ shared panel (issue 13.3)


def test_only_genes_measured_in_every_batch_are_modelled():
    matrix, samples = planted(seed=5)
    ids = list(matrix["sample"])
    cells = pd.DataFrame(
        [
            (("B1" if i < 30 else "B2"), s, g)
            for i, s in enumerate(ids)
            for g in GENES
            if not (i >= 30 and g in ("G03", "G40"))
        ],
        columns=["batch", "sample", "gene"],
    )
    shared, lacking = C.shared_panel(cells)
    assert lacking == {"G03": ["B2"], "G40": ["B2"]} and len(shared) == 44
    res = fit(matrix, samples, n_repeats=1, n_permutations=0, k_features=(5,), cells=cells)
    assert set(res["features"]["gene"]) == set(GENES) - {"G03", "G40"}
    assert (res["metrics"]["n_genes"] == 44).all()
    assert (
        "shared panel: genes not measured in every batch left out of the model: "
        "G03 (not in B2); G40 (not in B2)"
    ) in res["notes"]
    assert res["models"][("liver", "elasticnet")]["features"] == shared


def test_balanced_fit_as_sample_weights_is_bitwise_identical():
    matrix, samples = planted(seed=3)
    X = matrix[GENES].to_numpy()[:36]
    y = (samples["sites"] == "liver").to_numpy(int)[:36]
    model = C.make_pipeline("elasticnet").named_steps["model"]
    from sklearn.base import clone

    from ctc_qpcr.classifier.validation import fit_model

    ref = clone(model).fit(X, y)
    fast = fit_model(model, X, y)
    assert fast.class_weight is None and ref.class_weight == "balanced"
    assert (fast.coef_ == ref.coef_).all() and (fast.intercept_ == ref.intercept_).all()


# ------------------------------------------------- batched solver (docs/methods.md §7)


def test_batched_solver_reaches_the_saga_optimum():
    """The batched FISTA solver finds the optimum of scikit-learn's elastic-net objective
    (class-balanced weights): saga run to tol 1e-12 agrees to 1e-6, with the same zero
    coefficients; saga at the pipeline's tol 1e-4 is further from it."""
    from ctc_qpcr.classifier.batched import fit_enet_logistic

    rng = np.random.default_rng(1)
    n_problems, n, p = 6, 36, 10
    Z = rng.normal(size=(n_problems, n, p))
    y = (rng.random((n_problems, n)) < 0.4).astype(int)
    Z[:, :, :3] += y[:, :, None]
    C_ = np.array([0.1, 1.0, 10.0, 0.1, 1.0, 1.0])
    l1 = np.array([0.2, 0.5, 0.8, 0.8, 0.2, 0.5])
    s = np.stack([(n / (2.0 * np.bincount(yy)))[yy] for yy in y])
    w, b = fit_enet_logistic(Z, 2.0 * y - 1, s, C_, l1)
    worst_default = 0.0
    for i in range(n_problems):
        kw = {"solver": "saga", "C": C_[i], "l1_ratio": l1[i], "class_weight": "balanced", "random_state": 0}
        exact = LogisticRegression(tol=1e-12, max_iter=200000, **kw).fit(Z[i], y[i])
        np.testing.assert_allclose(w[i], exact.coef_[0], atol=1e-6)
        assert b[i] == pytest.approx(exact.intercept_[0], abs=1e-6)
        assert ((w[i] == 0) == (exact.coef_[0] == 0)).all()
        default = LogisticRegression(tol=1e-4, max_iter=5000, **kw).fit(Z[i], y[i])
        worst_default = max(worst_default, np.abs(default.coef_[0] - exact.coef_[0]).max())
    assert worst_default > 1e-4


def test_batched_solver_ignores_padding():
    """A padded row (weight 0) or zero column changes no coefficient."""
    from ctc_qpcr.classifier.batched import fit_enet_logistic

    rng = np.random.default_rng(2)
    Z = rng.normal(size=(1, 30, 6))
    y = (rng.random(30) < 0.5).astype(float)
    Z[0, :, 0] += y
    t, s = 2 * y[None] - 1, np.ones((1, 30))
    w, b = fit_enet_logistic(Z, t, s, np.array([1.0]), np.array([0.5]))
    padded = np.zeros((1, 34, 9))
    padded[0, :30, :6] = Z[0]
    tp, sp = np.zeros((1, 34)), np.zeros((1, 34))
    tp[0, :30], sp[0, :30] = t[0], 1.0
    wp, bp = fit_enet_logistic(padded, tp, sp, np.array([1.0]), np.array([0.5]))
    np.testing.assert_allclose(wp[0, :6], w[0], atol=1e-7)
    assert (wp[0, 6:] == 0).all() and bp[0] == pytest.approx(b[0], abs=1e-7)


def test_vectorised_fold_steps_equal_the_pipeline_steps():
    """Rank-to-normal, F-scores and medians of the batched path: the pipeline's values bit for bit."""
    from ctc_qpcr.classifier.batched import column_medians, f_scores, rank_gauss

    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 8)).round(1)  # ties
    X[:, 5] = 2.0  # constant gene: F is NaN
    Xte = np.vstack([rng.normal(size=(5, 8)), X[:2] + 10, X[:2] - 10])
    y = (rng.random(30) < 0.4).astype(int)
    scaler = C.RankGauss().fit(X)
    Ztr, Zte = rank_gauss(X, Xte)
    assert np.array_equal(Ztr, scaler.transform(X)) and np.array_equal(Zte, scaler.transform(Xte))
    with np.errstate(all="ignore"), pytest.warns(UserWarning):
        expected = f_classif(Ztr, y)[0]
    assert np.array_equal(f_scores(Ztr, y), expected, equal_nan=True)
    Xn = X.copy()
    Xn[rng.random(Xn.shape) < 0.3] = np.nan
    Xn[:, 2] = np.nan
    with pytest.warns(RuntimeWarning):
        expected = np.nanmedian(Xn, axis=0)
    assert np.array_equal(column_medians(Xn), expected, equal_nan=True)
    with pytest.warns(RuntimeWarning):
        expected = np.nanmedian(Xn[:-1], axis=0)
    assert np.array_equal(column_medians(Xn[:-1]), expected, equal_nan=True)


def test_rank_index_designs_equal_the_fold_by_fold_designs():
    """RankIndex (one sort of all samples, counts by cumulative sums) gives every fold the
    imputed, rank-to-normal values and gene order of FoldDesign on the fold's rows, bit for
    bit: ties, missing values in training and test rows, a gene with one training value, a
    gene with none (falls back), medians that tie with data values; one RankIndex serving
    folds of several training sizes (its normal-score table is kept per size)."""
    from ctc_qpcr.classifier.batched import FoldDesign, RankIndex

    rng = np.random.default_rng(7)
    for trial in range(60):
        X = rng.normal(size=(45, 9)).round(1)
        X[rng.random(X.shape) < (0.0, 0.05, 0.3)[trial % 3]] = np.nan
        if trial % 5 == 0:
            X[:, 3] = np.nan
            X[rng.integers(45), 3] = 1.0
        y = (rng.random(45) < 0.4).astype(int)
        index = RankIndex(X)
        for n_train in (36, 24, 36, 44):
            order = rng.permutation(45)
            train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
            fast = index.design(y, train, test)
            slow = FoldDesign(X[train], y[train], X[test])
            assert np.array_equal(fast.Ztr, slow.Ztr, equal_nan=True)
            assert np.array_equal(fast.Zte, slow.Zte, equal_nan=True)
            assert np.array_equal(fast.order, slow.order)


def test_categorical_clinical_baseline_equals_the_pipeline_bit_for_bit():
    """The clinical baseline's fast path (categorical covariates) gives the probabilities of
    the fitted clinical Pipeline exactly: dense and sparse one-hot designs (ColumnTransformer's
    0.3 density rule), missing values in training and test rows, tied most-frequent values,
    categories unseen in training, two columns; numeric covariates keep the pipeline."""
    from sklearn.base import clone

    from ctc_qpcr.classifier.clinical import categorical_only, clinical_fold_proba
    from ctc_qpcr.classifier.pipeline import clinical_pipeline

    rng = np.random.default_rng(0)
    labels = np.array(list("ABCDEFG"), dtype=object)
    seen_sparse = seen_dense = 0
    for trial in range(40):
        frame = pd.DataFrame({"subtype": rng.choice(labels[: 2 + trial % 5], 45)})
        if trial % 2:
            frame["grade"] = rng.choice(np.array(["g1", "g2", "g3"], dtype=object), 45)
        frame = frame.astype(object)
        for c in frame.columns:
            frame.loc[rng.random(45) < 0.15, c] = np.nan
        y = (rng.random(45) < 0.4).astype(int)
        pipe = clinical_pipeline(frame, 2016)
        assert categorical_only(pipe)
        order = rng.permutation(45)
        train, test = np.sort(order[:36]), np.sort(order[36:])
        fast = clinical_fold_proba(pipe, frame, y, train, test)
        fitted = clone(pipe).fit(frame.iloc[train], y[train])
        assert np.array_equal(fast, fitted.predict_proba(frame.iloc[test])[:, 1])
        sparse_out = fitted.named_steps["prep"].sparse_output_
        seen_sparse, seen_dense = seen_sparse + sparse_out, seen_dense + (not sparse_out)
    assert seen_sparse and seen_dense
    assert not categorical_only(clinical_pipeline(pd.DataFrame({"age": [50.0, 60.0]}), 2016))


def test_stratified_folds_equal_repeated_stratified_kfold():
    from ctc_qpcr.classifier.validation import stratified_folds

    rng = np.random.default_rng(5)
    for _ in range(40):
        n = int(rng.integers(12, 50))
        y = (rng.random(n) < rng.uniform(0.25, 0.75)).astype(int)
        y[:4] = rng.permutation([0, 1, 0, 1])
        n_splits, n_repeats, seed = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(1e4))
        ref = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
        ours = [fold for rep in stratified_folds(y, n_splits, n_repeats, seed) for fold in rep]
        for (a, b), (c, d) in zip(ref.split(np.zeros((n, 1)), y), ours, strict=True):
            assert np.array_equal(a, c) and np.array_equal(b, d)


def test_stratified_folds_reseed_one_generator_per_thread():
    """stratified_folds re-seeds one RandomState per thread: calls with other seeds in
    between, or in another thread, do not change the folds of a seed."""
    import threading

    from ctc_qpcr.classifier.validation import stratified_folds

    y = np.array([0, 1] * 10 + [1] * 5)

    def folds(seed):
        return [te.tolist() for rep in stratified_folds(y, 4, 3, seed) for _, te in rep]

    first = folds(11)
    folds(12)
    other = []
    thread = threading.Thread(target=lambda: other.append((folds(13), folds(11))))
    thread.start()
    thread.join()
    assert folds(11) == first == other[0][1]
    assert other[0][0] != first


def test_fast_auc_counts_pairs_ties_half():
    y = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.4, 0.4, 0.8, 0.9, 0.3])
    # positives 0.4, 0.8, 0.3 vs negatives 0.1, 0.4, 0.9: 1.5 + 2 + 1 = 4.5 of 9 pairs
    assert C.fast_auc(y, score) == 0.5
    assert C.fast_auc(y, score) == pytest.approx(roc_auc_score(y, score))


def test_repeat_scores_equal_the_sklearn_metrics():
    from sklearn.metrics import balanced_accuracy_score, brier_score_loss

    rng = np.random.default_rng(9)
    n = 30
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    oof = rng.random((4, n)).round(2)
    oof[0, :3] = 0.5  # on the threshold
    folds = [(np.flatnonzero(np.arange(n) % 3 != i), np.flatnonzero(np.arange(n) % 3 == i)) for i in range(3)]
    scores = C.repeat_scores(y, oof, [folds] * 4)
    assert scores["auc_pooled"] == pytest.approx(np.mean([roc_auc_score(y, p) for p in oof]), abs=1e-12)
    expected = np.mean([balanced_accuracy_score(y, (p >= 0.5).astype(int)) for p in oof])
    assert scores["balanced_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert scores["brier"] == pytest.approx(np.mean([brier_score_loss(y, p) for p in oof]), abs=1e-12)


def test_roc_points_equal_sklearn_roc_curve():
    """The ROC figure's points (numpy, so the plotting job does not import scikit-learn)
    are roc_curve's: ties, few distinct scores, one class only (NaN rates)."""
    import os
    import subprocess
    import sys
    import warnings
    from pathlib import Path

    from sklearn.metrics import roc_curve

    from ctc_qpcr.plots_classifier import roc_points

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        if trial % 50 == 0:
            y[:] = 1
        score = rng.random(n).round(int(rng.integers(1, 4)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fpr, tpr, _ = roc_curve(y, score)
        ours = roc_points(y, score)
        assert np.array_equal(ours[0], fpr, equal_nan=True) and np.array_equal(ours[1], tpr, equal_nan=True)
    code = "import sys, ctc_qpcr.plots_classifier; print('sklearn' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(C.__file__).parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
