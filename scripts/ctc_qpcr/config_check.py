"""Plain-language checks of config/config.yaml before schema validation.

The JSON schema refuses unknown keys, but its message is a long schema dump.
This check walks the schema and names the full path of an unknown key, with
the closest allowed key ("did you mean"), so a misspelling is fixed in seconds.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from .errors import ConfigError


def unknown_keys(config: dict, schema: dict, path: str = "") -> list[str]:
    """Return one message per key of ``config`` that ``schema`` does not allow."""
    problems = []
    if not isinstance(config, dict) or schema.get("type") != "object":
        return problems
    allowed = schema.get("properties", {})
    closed = schema.get("additionalProperties", True) is False
    for key, value in config.items():
        where = f"{path}.{key}" if path else str(key)
        if key in allowed:
            problems += unknown_keys(value, allowed[key], where)
        elif closed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
            hint = f" — did you mean '{(path + '.') if path else ''}{close[0]}'?" if close else ""
            problems.append(
                f"unknown config key '{where}'{hint} (allowed here: {', '.join(sorted(allowed))})"
            )
        elif isinstance(schema.get("additionalProperties"), dict):
            problems += unknown_keys(value, schema["additionalProperties"], where)
    return problems


def check_config(config: dict, schema: dict, source: str = "config/config.yaml") -> None:
    """Raise :class:`ConfigError` listing every unknown key of ``config``."""
    problems = unknown_keys(config, schema)
    if problems:
        raise ConfigError(
            f"{source}: "
            + "; ".join(problems)
            + " — fix the spelling (see the comments in config/config.yaml)"
        )


# --------------------------------------------------------------------------- settings against the sheets
# Checked at dry-run time (workflow/rules/common.smk), so a setting that names a
# gene, a group or a time point the sheets do not have stops the run before any
# job starts, with a did-you-mean for a case or spelling variant.


def _missing(wanted, present, what: str, where: str, sheet: str) -> list[str]:
    """One message per value of ``wanted`` that is not exactly in ``present``."""
    wanted = list(wanted)
    if not wanted:
        return []
    if hasattr(present, "unique"):  # a sheet column: 44,000 cells, a few distinct values
        present = present.unique()
    present = sorted({text for text in map(str, present) if text != ""})
    problems = []
    for value in wanted:
        value = str(value)
        if value in present:
            continue
        variants = [p for p in present if p.casefold() == value.casefold()]
        close = variants or difflib.get_close_matches(value, present, n=1, cutoff=0.75)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        problems.append(f"{where}: {what} '{value}' is not in {sheet}{hint}")
    return problems


def _comparison_problems(config: dict, samples, sample_sheet: str) -> list[str]:
    problems = []
    for spec in config.get("differential", {}).get("comparisons", []) or []:
        name = spec.get("name", "?")
        kind = spec.get("type")
        column = spec.get("column") or {"per_site": "sites", "timepoints": "timepoint"}.get(kind)
        columns = [column] + list((spec.get("filter") or {}).keys())
        for col in columns:
            if col and col not in samples.columns:
                problems += _missing(
                    [col],
                    samples.columns,
                    "column",
                    f"differential comparison '{name}'",
                    f"{sample_sheet} (columns)",
                )
        if column in samples.columns and kind != "per_site":
            problems += _missing(
                spec.get("levels") or [],
                samples[column],
                f"{column}",
                f"differential comparison '{name}' levels",
                sample_sheet,
            )
        for col, wanted in (spec.get("filter") or {}).items():
            if col in samples.columns:
                values = wanted if isinstance(wanted, list) else [wanted]
                problems += _missing(
                    values, samples[col], col, f"differential comparison '{name}' filter", sample_sheet
                )
    return problems


def settings_problems(config: dict, samples, assays, sample_sheet: str, assay_sheet: str) -> list[str]:
    """Every setting that names a gene, group, column or time point absent from the sheets."""
    genes = assays["gene"]
    norm = config.get("normalisation", {})
    problems = _missing(
        norm.get("reference_genes") or [],
        genes,
        "gene",
        "normalisation.reference_genes",
        f"{assay_sheet} (gene)",
    )
    problems += _missing(
        config.get("positivity", {}).get("markers") or [],
        genes[assays["role"] == "target"],
        "target gene",
        "positivity.markers",
        f"{assay_sheet} (gene, role target)",
    )
    if norm.get("normfinder_group"):
        problems += _missing(
            [norm["normfinder_group"]],
            samples.columns,
            "column",
            "normalisation.normfinder_group",
            f"{sample_sheet} (columns)",
        )
    problems += _comparison_problems(config, samples, sample_sheet)
    timepoints = [
        ("classifier.one_timepoint", config.get("classifier", {}), "one_timepoint", "activate"),
        ("outcome.expression_timepoint", config.get("outcome", {}), "expression_timepoint", "activate"),
    ]
    for where, section, key, active in timepoints:
        if section.get(active) and section.get(key):
            problems += _missing(
                [section[key]], samples["timepoint"], "timepoint", where, f"{sample_sheet} (timepoint)"
            )
    problems += _efficiency_problems(config, samples, assays, assay_sheet)
    return problems


def _efficiency_problems(config: dict, samples, assays, assay_sheet: str) -> list[str]:
    """Efficiency correction on: every target/reference assay needs an efficiency (or standards)."""
    eff = config.get("efficiency", {})
    if not eff.get("apply"):
        return []
    standards = (samples["kind"] == "standard") & (samples["quantity"] != "")
    if eff.get("from_standards") and standards.any():
        return []
    measured = assays["role"].isin(["target", "reference"])
    lacking = sorted(assays.loc[measured & (assays["efficiency"].astype(str).isin(["", "nan"])), "assay"])
    if not lacking:
        return []
    return [
        f"efficiency.apply is true but {len(lacking)} assay(s) in {assay_sheet} have no efficiency: "
        f"{', '.join(lacking)} — give each its efficiency (2.0 = 100 %), add standard samples "
        "with a quantity, or set efficiency.apply: false"
    ]


def check_settings(
    config: dict, samples, assays, sample_sheet: str, assay_sheet: str, source: str = "config/config.yaml"
) -> None:
    """Raise :class:`ConfigError` listing every setting that does not match the sheets."""
    problems = settings_problems(config, samples, assays, sample_sheet, assay_sheet)
    if problems:
        raise ConfigError(
            f"{source}: "
            + "; ".join(problems)
            + " — fix the setting or the sheet (names are matched exactly)"
        )


def check_yaml_file(path: str | Path) -> dict:
    """Parse a config file as YAML, or raise :class:`ConfigError` naming the file, line and problem.

    Snakemake's own message for a broken config file names neither the file nor
    the line; the Snakefile calls this on config/config.yaml and on every
    ``--configfile`` first (a ``--configfile`` that is not valid YAML stops
    Snakemake before the Snakefile runs: ``python scripts/check_config.py FILE``
    gives the line). A key given twice in one mapping is refused too (YAML
    would keep the last one in silence).
    """
    import yaml

    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: the config file is not UTF-8 text (byte {exc.start}) — save it as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_loader(str(path), fast=True)) or {}
    except yaml.YAMLError:
        pass  # parsed again below by PyYAML's own parser, whose messages name the problem
    try:
        return yaml.load(text, Loader=_loader(str(path))) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is None:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        lines = text.splitlines()
        where = f"{path}, line {mark.line + 1}"
        tabs = [i for i, line in enumerate(lines[: mark.line + 1]) if "\t" in line]
        if tabs:
            raise ConfigError(
                f"{path}, line {tabs[-1] + 1}: a tab character in the indentation — YAML indents "
                "with spaces only: replace the tab by spaces"
            ) from None
        raise ConfigError(
            f"{where}, column {mark.column + 1}: not valid YAML ({exc.problem}) — "
            "check the indentation and the ':' after each key"
        ) from None


def _loader(path: str, fast: bool = False):
    """A SafeLoader that refuses a key given twice in one mapping, naming both lines
    (``fast``: on libyaml's C parser when PyYAML has it — the same data, ~8x faster)."""
    import yaml

    class Loader(_safe_loader() if fast else yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise ConfigError(
                    f"{path}, line {key_node.start_mark.line + 1}: the key '{key}' is given twice in one "
                    f"section (first on line {seen[key] + 1}); YAML would keep the last one — delete one"
                )
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def _safe_loader():
    """``yaml.CSafeLoader`` (libyaml) when PyYAML was built with it, else ``yaml.SafeLoader``."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path: str | Path) -> dict:
    """A YAML file of the workflow (the config schema: its ~9 kB cost ~70 ms in pure Python)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_safe_loader())


def check_config_files(paths, schema: dict) -> None:
    """Every config file on its own: valid YAML, no key twice, no unknown key — each named by its file."""
    for path in paths:
        check_config(check_yaml_file(path), schema, source=str(path))
