"""Saving and loading classifier models (skops files with a type allow-list).

:func:`save_models` writes one skops file with deterministic bytes; :func:`load_models`
only accepts the types listed in ``TRUSTED_TYPES``.  Loading a model file still runs
code chosen by whoever wrote the file: never load model files from untrusted sources.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn

from .errors import ClassifierInputError

log = logging.getLogger(__name__)

MODEL_FORMAT = "ctc-qpcr-classifier/1"

# Types a classifier model file may contain (skops allow-list, see load_models).
TRUSTED_TYPES = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.feature_selection._univariate_selection.SelectKBest",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "ctc_qpcr.classifier.pipeline.RankGauss",
    "ctc_qpcr.classifier.RankGauss",  # files written before the classifier subpackage
    "sklearn.svm._classes.SVC",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    "builtins.slice",
]


def versions() -> dict[str, str]:
    import joblib
    import scipy
    import skops

    from .. import __version__

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "skops": skops.__version__,
        "joblib": joblib.__version__,
        "ctc_qpcr": __version__,
    }


def save_models(models: Mapping[tuple[str, str], dict], path: str | os.PathLike) -> None:
    """Write model bundles to one skops file (see :func:`load_models` for the safety note)."""
    import skops.io as sio

    from ..tables import atomic_path

    payload = {"format": MODEL_FORMAT, "bundles": [models[key] for key in sorted(models)]}
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(_deterministic_zip(sio.dumps(payload)))


def _deterministic_zip(data: bytes) -> bytes:
    """The same skops archive, made byte-reproducible.

    skops names each stored array file and each memo ``__id__`` after the
    object's memory address (``id()``), and stamps members with the current
    time; equal models then give different bytes in every process. Here every
    such number is replaced by its rank of first appearance in ``schema.json``
    (the same number everywhere it occurs, so shared objects stay shared),
    members are renamed accordingly, sorted, and dated 1980-01-01.
    """
    import io
    import re
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json").decode("utf-8")
    numbers: dict[str, str] = {}
    for match in re.finditer(r'"__id__": (\d+)|"(\d+)\.npy"', schema):
        key = match.group(1) or match.group(2)
        numbers.setdefault(key, str(len(numbers) + 1))

    def renumber(text: str) -> str:
        text = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {numbers[m.group(1)]}', text)
        return re.sub(r'"(\d+)\.npy"', lambda m: f'"{numbers.get(m.group(1), m.group(1))}.npy"', text)

    members = {}
    for name in source.namelist():
        content = source.read(name)
        if name == "schema.json":
            content = renumber(schema).encode("utf-8")
        else:
            stem = name[: -len(".npy")] if name.endswith(".npy") else None
            if stem is not None and stem in numbers:
                name = f"{numbers[stem]}.npy"
        members[name] = content
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, members[name])
    return out.getvalue()


def load_models(path: str | os.PathLike) -> dict[tuple[str, str], dict]:
    """Read bundles written by :func:`save_models`.

    WARNING: loading a model file executes code chosen by whoever wrote the file.
    Only types in ``TRUSTED_TYPES`` are accepted, but never load model files from
    untrusted sources.
    """
    import skops.io as sio

    log.warning(
        "loading classifier models from %s: model files can execute code — "
        "only load files from a trusted source",
        path,
    )
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ClassifierInputError(
            f"model file contains types not on the allow-list: {', '.join(unexpected)}",
            "it was not written by ctc_qpcr.classifier.save_models of this version; do not load it",
            path=str(path),
        )
    payload = sio.load(path, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ClassifierInputError(
            "not a ctc-qpcr classifier model file", "give results/classifier/model.skops", path=str(path)
        )
    return {(b["site"], b["estimator"]): b for b in payload["bundles"]}
