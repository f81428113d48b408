"""The run_config codec: what AUREON encodes, Flower's own parser (and Hydra's override list) decodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from aureon import keys
from aureon.launch.run_config import (
    format_config,
    join_overrides,
    overrides_from_run_config,
    parse_config,
    run_config_for,
    run_dir_from_run_config,
    split_overrides,
    toml_value,
)
from aureon.launch.supernode import SuperNodeSpec

AWKWARD = [
    "plain",
    "",
    "with space",
    'double "quoted"',
    "single 'quoted'",
    "both ' and \"",
    "a=b=c",
    "key=value other=thing",
    "back\\slash\\",
    "ends with backslash\\",
    '\\"',
    "tab\tnew\nline",
    "unicode: ε ≤ 2, 数据",
    "$HOME `cmd` ; | & *",
    "#not a comment",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_a_string_survives_flowers_parser(text: str) -> None:
    assert parse_config(format_config({"value": text})) == {"value": text}


def test_every_type_and_several_keys_round_trip() -> None:
    entries = {
        "partition-id": 3,
        "num-partitions": 10,
        "neg": -7,
        "require-dp": True,
        "off": False,
        "max-epsilon": 2.2,
        "tiny": 1e-5,
        "huge": 1e16,
        "no-limit": float("inf"),
        **{f"s{i}": text for i, text in enumerate(AWKWARD)},
    }
    decoded = parse_config(format_config(entries))
    assert decoded == entries
    assert [type(v) for v in decoded.values()] == [type(v) for v in entries.values()]


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["num_rounds=3", "privacy=none"],
        ["dataset.path=/data/my mnist", "seed=1"],
        ["dataset.path='/quoted dir'", 'name="double quoted"', "x=a=b", "p=C:\\data\\mnist"],
        ["resume=/runs/2024 01 01", "", "tabs\tand\nnewlines"],
    ],
)
def test_overrides_round_trip_through_both_layers(overrides: list[str], tmp_path: Path) -> None:
    assert split_overrides(join_overrides(overrides)) == overrides
    run_dir = tmp_path / "run dir with \"quotes\" and 'more'"
    delivered = parse_config(format_config(run_config_for(overrides, run_dir)))
    assert set(delivered) == {keys.RUN_CONFIG_OVERRIDES, keys.RUN_CONFIG_RUN_DIR}
    assert overrides_from_run_config(delivered) == overrides
    assert run_dir_from_run_config(delivered) == str(run_dir)


def test_node_config_round_trips(tmp_path: Path) -> None:
    spec = SuperNodeSpec(
        superlink="127.0.0.1:9092", partition_id=1, num_partitions=4, flwr_home=tmp_path,
        state_dir=tmp_path / "state dir", clientappio_port=9094,
        overrides=["dataset.path=/data/my mnist", 'note="hi"'],
        privacy_floor={"require-dp": True, "max-epsilon": 2.5},
    )
    delivered = parse_config(spec.node_config())
    assert delivered[keys.NODE_PARTITION_ID] == 1
    assert delivered[keys.NODE_NUM_PARTITIONS] == 4
    assert delivered[keys.NODE_STATE_DIR] == str((tmp_path / "state dir").resolve())
    assert split_overrides(delivered[keys.NODE_OVERRIDES]) == ["dataset.path=/data/my mnist", 'note="hi"']
    assert (delivered["require-dp"], delivered["max-epsilon"]) == (True, 2.5)


def test_missing_entries_decode_to_nothing() -> None:
    assert overrides_from_run_config({}) == []
    assert run_dir_from_run_config({}) == ""


@pytest.mark.parametrize("bad_key", ["has space", "a=b", "", 'q"'])
def test_keys_flower_cannot_read_are_refused(bad_key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        format_config({bad_key: 1})


def test_values_other_than_toml_scalars_are_refused() -> None:
    with pytest.raises(TypeError):
        toml_value([1, 2])  # type: ignore[arg-type]
