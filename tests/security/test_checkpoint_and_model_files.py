"""Checkpoints and saved models: damaged or mismatched files give one line naming the file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord

from aureon.config import to_yaml
from aureon.exceptions import AureonError, ModelFileError
from aureon.federated.resume import check_resume, run_identity
from aureon.launch.run_config import compose_config
from aureon.model_compression.int8_io import load_int8_state
from aureon.model_compression.model_io import load_into, load_state_file
from aureon.model_compression.quantization import load_quantized
from aureon.model_compression.sparse_io import load_sparse, pack_sparse, unpack_sparse
from aureon.tracking.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from simulations.compress import main as compress_main
from tests.security import samples


def _checkpoint_dir(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / "checkpoint.npz").write_bytes(content)
    return tmp_path


def _assert_one_line(error: pytest.ExceptionInfo[AureonError], prefix: str) -> None:
    message = str(error.value)
    assert message.startswith(prefix) and "\n" not in message, message


def _member_data_offset(content: bytes, name: str) -> int:
    """Where a zip member's stored bytes begin (after its local header)."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo(name)
    header = content[info.header_offset : info.header_offset + 30]
    return info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")


@pytest.mark.parametrize(
    "content",
    [b"", samples.checkpoint_bytes()[:100], samples.checkpoint_bytes()[:-30], b"PK\x03\x04" + b"\x00" * 40],
    ids=["empty", "truncated-head", "truncated-tail", "zip-garbage"],
)
def test_corrupted_checkpoint_is_one_line_naming_the_file(tmp_path: Path, content: bytes) -> None:
    run_dir = _checkpoint_dir(tmp_path, content)
    with pytest.raises(CheckpointError, match="not a readable AUREON checkpoint") as error:
        load_checkpoint(run_dir)
    _assert_one_line(error, f"checkpoint {run_dir / 'checkpoint.npz'}: ")


def test_bit_flip_in_checkpoint_data_fails_its_crc(tmp_path: Path) -> None:
    content = bytearray(samples.checkpoint_bytes())
    content[_member_data_offset(bytes(content), "__meta__.npy") + 140] ^= 0x01
    with pytest.raises(CheckpointError, match="Bad CRC-32") as error:
        load_checkpoint(_checkpoint_dir(tmp_path, bytes(content)))
    _assert_one_line(error, "checkpoint ")


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _meta(**changes: object) -> np.ndarray:
    meta = {
        "version": 1, "round": 2, "run_key": "k", "layout": {"arrays": ["w"], "strategy": {}},
        "rounds": [], "initial": None, "elapsed_seconds": 1.0, "identity": {},
    }
    meta.update(changes)
    return np.array(json.dumps(meta))


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (_npz(**{"a::w": np.ones(2)}), "lacks its metadata entry"),
        (_npz(__meta__=_meta()), "lacks the array 'a::w'"),
        (_npz(__meta__=_meta(round="two"), **{"a::w": np.ones(2)}), "round must be an integer >= 0, got 'two'"),
        (_npz(__meta__=_meta(round=True), **{"a::w": np.ones(2)}), "round must be an integer"),
        (_npz(__meta__=np.array("[1, 2]"), **{"a::w": np.ones(2)}), "metadata must be a JSON object, got list"),
        (_npz(__meta__=np.array(3.0), **{"a::w": np.ones(2)}), "metadata entry is not a JSON string"),
        (_npz(__meta__=_meta(layout={"arrays": "w"}), **{"a::w": np.ones(2)}), "layout must hold"),
        (_npz(__meta__=_meta(rounds=[{"round": 1}]), **{"a::w": np.ones(2)}), "round record 0 is malformed"),
        (_npz(__meta__=_meta(version=7), **{"a::w": np.ones(2)}), "format version 7, expected 1"),
        (_npz(__meta__=_meta(identity=None), **{"a::w": np.ones(2)}), "identity must be a JSON object"),
        (_npz(__meta__=_meta(), **{"a::w": np.array(["x"])}), "non-numeric dtype"),
    ],
    ids=["no-meta", "missing-array", "round-str", "round-bool", "meta-list", "meta-float",
         "layout", "rounds", "version", "identity", "string-array"],
)
def test_checkpoint_with_missing_keys_or_wrong_types(tmp_path: Path, content: bytes, what: str) -> None:
    with pytest.raises(CheckpointError, match=what) as error:
        load_checkpoint(_checkpoint_dir(tmp_path, content))
    _assert_one_line(error, "checkpoint ")


def test_missing_checkpoint_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="has no checkpoint.npz") as error:
        load_checkpoint(tmp_path)
    _assert_one_line(error, f"checkpoint {tmp_path / 'checkpoint.npz'}: missing")


def test_save_checkpoint_leaves_only_the_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    content = samples.checkpoint_bytes()
    run_dir = _checkpoint_dir(tmp_path / "run", content)
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.round == 1 and sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.npz"]


def test_resume_refuses_a_checkpoint_of_another_model_shape(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits", "model=mlp"])
    config.resume = str(tmp_path)
    state = {k: v.numpy() for k, v in samples.small_model(hidden=6).state_dict().items()}
    save_checkpoint(tmp_path, Checkpoint(round=1, run_key="k", arrays=state, identity=run_identity(config)))
    assert check_resume(config, ArrayRecord(samples.small_model(hidden=6).state_dict())) is not None
    fits_not = r"do not fit the configured model .*1.weight \(6, 8\) vs model \(7, 8\)"
    with pytest.raises(CheckpointError, match=fits_not) as error:
        check_resume(config, ArrayRecord(samples.small_model(hidden=7).state_dict()))
    _assert_one_line(error, f"checkpoint {tmp_path / 'checkpoint.npz'}: ")


def test_truncated_model_pt_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(samples.model_pt_bytes()[:-100])
    with pytest.raises(ModelFileError, match="not a readable torch file") as error:
        load_state_file(path)
    _assert_one_line(error, f"{path}: ")


def test_model_pt_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ModelFileError, match="holds a list, expected a state dict"):
        load_state_file(path)
    torch.save({"w": 3}, path)
    with pytest.raises(ModelFileError, match="entry 'w' is a int, expected a tensor"):
        load_state_file(path)


def test_model_of_the_wrong_shape_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(samples.model_pt_bytes())
    with pytest.raises(ModelFileError, match="does not fit the Sequential") as error:
        load_into(samples.small_model(hidden=7), load_state_file(path), path)
    _assert_one_line(error, f"{path}: ")


def test_truncated_and_wrong_shape_int8_files(tmp_path: Path) -> None:
    path = tmp_path / "model.quantize.bin"
    path.write_bytes(samples.int8_bytes()[:-10])
    with pytest.raises(ModelFileError, match="truncated") as error:
        load_int8_state(path)
    _assert_one_line(error, f"{path}: ")
    path.write_bytes(samples.int8_bytes())
    with pytest.raises(ModelFileError, match="does not fit") as error:
        load_quantized(samples.small_model(hidden=7), path, scheme="dynamic")
    _assert_one_line(error, f"{path}: ")
    assert isinstance(load_quantized(samples.small_model(), path, scheme="dynamic"), torch.nn.Module)


def test_sparse_file_with_inconsistent_mask_is_refused(tmp_path: Path) -> None:
    packed = pack_sparse({"w": torch.tensor([0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0])})
    packed["tensors"]["w"]["values"] = torch.tensor([1.0, 2.0])  # the mask keeps three
    with pytest.raises(ModelFileError, match="mask keeps 3 values, file holds 2"):
        unpack_sparse(packed)
    path = tmp_path / "model.prune.pt"
    path.write_bytes(samples.sparse_bytes()[:50])
    with pytest.raises(ModelFileError, match="not a readable torch file") as error:
        load_sparse(path)
    _assert_one_line(error, f"{path}: ")


def test_compress_command_on_truncated_model_pt_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUREON_DEBUG", raising=False)
    config = compose_config(["dataset=digits", "model=mlp", "model.hidden=[16]"])
    (tmp_path / "config.yaml").write_text(to_yaml(config))
    (tmp_path / "model.pt").write_bytes(samples.model_pt_bytes()[:64])
    assert compress_main([f"run_dir={tmp_path}", "method=prune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'model.pt'}: not a readable torch file")


def test_compress_command_on_model_of_another_shape_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUREON_DEBUG", raising=False)
    config = compose_config(["dataset=digits", "model=mlp", "model.hidden=[16]"])
    (tmp_path / "config.yaml").write_text(to_yaml(config))
    (tmp_path / "model.pt").write_bytes(samples.model_pt_bytes())
    assert compress_main([f"run_dir={tmp_path}", "method=prune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.pt: does not fit the MLP" in err[0], err


def test_compress_command_on_garbled_config_yaml_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUREON_DEBUG", raising=False)
    (tmp_path / "config.yaml").write_text("dataset: [unclosed\n")
    (tmp_path / "model.pt").write_bytes(samples.model_pt_bytes())
    assert compress_main([f"run_dir={tmp_path}", "method=prune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.yaml: not a readable run config" in err[0], err
