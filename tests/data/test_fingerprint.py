"""The ledger key of a client's data covers exactly the files its dataset config declares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aureon.config import DatasetConfig, DigitsConfig, MnistConfig, MnistSubsetConfig
from aureon.data.fingerprint import dataset_fingerprint


@dataclass
class _CsvConfig(DatasetConfig):
    """A new file-backed dataset that declares nothing: its loader reads ``path``'s files."""

    name: str = "csv"


def test_mnist_is_keyed_by_its_four_idx_files_only(tiny_mnist_dir: Path) -> None:
    config = MnistConfig(path=str(tiny_mnist_dir))
    key = dataset_fingerprint(config)
    assert key.startswith("sha256:")
    (tiny_mnist_dir / "README.txt").write_text("not read by the loader")
    assert dataset_fingerprint(config) == key
    labels = tiny_mnist_dir / "t10k-labels-idx1-ubyte"
    changed = bytearray(labels.read_bytes())
    changed[-1] = (changed[-1] + 1) % 10
    labels.write_bytes(bytes(changed))
    assert dataset_fingerprint(config) not in (key, "builtin:mnist")


def test_packaged_data_keeps_its_key_whatever_path_the_run_sets(tmp_path: Path) -> None:
    (tmp_path / "other.bin").write_bytes(b"\x00" * 8)
    assert dataset_fingerprint(DigitsConfig(path=str(tmp_path))) == "builtin:digits"
    assert dataset_fingerprint(MnistSubsetConfig(path=str(tmp_path))) == "builtin:mnist_subset"
    assert dataset_fingerprint(DigitsConfig()) == "builtin:digits"


def test_a_new_file_backed_dataset_is_keyed_by_the_files_under_its_path(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,2\n")
    folder, one_file = _CsvConfig(path=str(tmp_path)), _CsvConfig(path=str(tmp_path / "a.csv"))
    key = dataset_fingerprint(one_file)
    assert key.startswith("sha256:") and dataset_fingerprint(folder) == key  # the same one file
    (tmp_path / "b.csv").write_text("3,4\n")
    assert dataset_fingerprint(folder) not in (key, "builtin:csv")
    assert dataset_fingerprint(one_file) == key
    assert dataset_fingerprint(_CsvConfig()) == "builtin:csv"
