"""Config sections parsed into typed options: schema defaults, checks naming the user's key."""

from dataclasses import FrozenInstanceError, dataclass

import pytest

from ctc_qpcr.errors import ConfigError
from ctc_qpcr.options import from_config, schema, schema_default, section


@dataclass(frozen=True)
class Ipc:
    activate: bool
    max_sd: float
    min_replicates: int
    calibrators: tuple[str, ...]
    on_missing: str


def test_defaults_come_from_the_schema():
    o = from_config(Ipc, "ipc", None)
    spec = schema()["ipc"]["properties"]
    assert o == Ipc(True, 0.25, 3, (), "stop")
    assert o.max_sd == spec["max_sd"]["default"]
    assert schema_default("lod") == 35
    with pytest.raises(FrozenInstanceError):
        o.max_sd = 1.0


def test_given_keys_override_and_lists_become_tuples():
    o = from_config(Ipc, "ipc", {"max_sd": 0.4, "calibrators": ["IPC1", "IPC2"]})
    assert o.max_sd == 0.4 and o.calibrators == ("IPC1", "IPC2")
    assert section("ipc", {"max_sd": 0.4}, ["max_sd"]) == {"max_sd": 0.4}


@pytest.mark.parametrize(
    "given, words",
    [
        ({"max_sdd": 0.4}, ["ipc.max_sdd", "unknown", "max_sd"]),
        ({"on_missing": "ignore"}, ["ipc.on_missing", "'ignore'", "stop, exclude, uncalibrated"]),
        ({"max_sd": "0.4"}, ["ipc.max_sd", "'0.4'", "type number"]),
        ({"activate": "yes"}, ["ipc.activate", "type boolean"]),
        ({"min_replicates": 0}, ["ipc.min_replicates", "0", "minimum of 1"]),
        ({"calibrators": ["IPC", 3]}, ["ipc.calibrators[1]", "type string"]),
    ],
)
def test_bad_values_name_the_key_as_written(given, words):
    with pytest.raises(ConfigError) as err:
        from_config(Ipc, "ipc", given)
    for word in words:
        assert word in str(err.value)


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="config ipc: 'off' is not a section"):
        from_config(Ipc, "ipc", "off")


def test_stage_options_name_the_stage_key():
    from ctc_qpcr.classifier import classifier_options
    from ctc_qpcr.outcome import outcome_options
    from ctc_qpcr.positivity import positivity_options

    with pytest.raises(ConfigError, match=r"classifier\.estimators\[0\]: 'svm' is not one of elasticnet"):
        classifier_options({"estimators": ["svm"]})
    with pytest.raises(ConfigError, match=r"outcome\.on_unmatched: 'drop' is not one of error, exclude"):
        outcome_options({"on_unmatched": "drop"})
    with pytest.raises(ConfigError, match=r"positivity\.min_markers: 0 is less than the minimum of 1"):
        positivity_options({"min_markers": 0})
    with pytest.raises(ConfigError, match=r"config key\(s\) outcome\.treshold unknown"):
        outcome_options({"treshold": 5})
    # the defaults are the schema's
    o = outcome_options()
    assert (o.thresholds, o.main_threshold, o.followups, o.associations) == ((1, 5), 5, (), None)
    assert (
        classifier_options().n_permutations
        == schema()["classifier"]["properties"]["n_permutations"]["default"]
    )


def _schema_specs():
    """Every leaf spec of the config schema (sections' properties and top-level keys)."""
    out = []
    for spec in schema().values():
        out.extend(spec["properties"].values() if "properties" in spec else [spec])
    return out


VALUES = [0, 1, -1, 2, 0.5, -0.5, 1.0, 3.32, 35, 100, 1e9, float("nan"), float("inf"), True, False, None,
          "", "x", "stop", "exclude", "flag", "reference", "two_group", [], [1], ["a"], ["a", 2], (1, 2),
          {"a": 1}, [None], [True], [0.5, 2]]  # fmt: skip


def test_plain_check_never_accepts_what_jsonschema_refuses():
    """The fast path (no jsonschema import) may only say 'valid' where the validator agrees."""
    from ctc_qpcr.options import _plainly_valid, _validator

    specs = _schema_specs()
    fast = 0
    for spec in specs:
        for value in VALUES + list(spec.get("enum", [])):
            if _plainly_valid(value, spec):
                fast += 1
                assert _validator()(spec).is_valid(value), (spec, value)
    assert fast > 100  # the fast path does take the common cases
    # a bool is no number, a list of a wrong item type is refused by the validator's message
    with pytest.raises(ConfigError, match="must be of type number"):
        section("replicates", {"max_sd": True}, ["max_sd"])
