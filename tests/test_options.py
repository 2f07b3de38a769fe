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
