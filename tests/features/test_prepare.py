"""prepare_dataset with a feature cache: computed once, memory-mapped, per split, never trusted blindly."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from aureon.config import AureonConfig
from aureon.data import client_indices, load_dataset
from aureon.features import SPLITS, prepare_dataset
from aureon.features import prepare as prepare_module
from aureon.launch.run_config import compose_config


@pytest.fixture(autouse=True)
def _fresh_process_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call below behaves as in a new process (a Ray worker, the server)."""
    monkeypatch.setattr(prepare_module, "_PREPARED", {})


def _config(cache: Path, *overrides: str) -> AureonConfig:
    return compose_config(["dataset=digits", "features=scattering", f"features.cache_dir={cache}", *overrides])


def _prepare(config: AureonConfig, **kwargs: object):  # type: ignore[no-untyped-def]
    prepare_module._PREPARED.clear()
    return prepare_dataset(config.dataset, config.seed, config.features, **kwargs)  # type: ignore[arg-type]


def _forbid(monkeypatch: pytest.MonkeyPatch, *, computing: bool = True, loading: bool = True) -> None:
    def refuse(*args: object, **kwargs: object) -> Iterator[np.ndarray]:
        raise AssertionError("features were computed although they are on disk")

    def refuse_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the raw images were loaded although the features are on disk")

    if computing:
        monkeypatch.setattr(prepare_module.scattering, "scattering_batches", refuse)
    if loading:
        monkeypatch.setattr(prepare_module.DatasetSource, "load_once", refuse_load)
        monkeypatch.setattr(prepare_module.DatasetSource, "load", refuse_load)


def _kymatio(images: np.ndarray, *, J: int, orientations: int) -> np.ndarray:
    from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D

    transform = ScatteringTorch2D(J=J, shape=images.shape[-2:], L=orientations)
    with torch.no_grad():
        maps = transform(torch.from_numpy(np.ascontiguousarray(images)))
    return maps.reshape(len(images), -1, *maps.shape[-2:]).numpy()


@pytest.mark.parametrize(("dataset", "rows"), [("digits", None), ("mnist_subset", 64)])
def test_features_are_the_numbers_the_old_path_gave(tmp_path: Path, dataset: str, rows: int | None) -> None:
    """The old path: kymatio over the loaded images, no standardisation of the features after it."""
    config = compose_config([f"dataset={dataset}", "features=scattering", f"features.cache_dir={tmp_path}"])
    prepared = _prepare(config)
    raw = load_dataset(config.dataset, config.seed)
    np.testing.assert_array_equal(prepared.y_train, raw.y_train)
    np.testing.assert_array_equal(prepared.y_test, raw.y_test)
    assert prepared.num_classes == raw.num_classes
    for ours, images in ((prepared.x_train, raw.x_train), (prepared.x_test, raw.x_test)):
        assert ours.shape[0] == len(images) and ours.dtype == np.float32
        old = _kymatio(images[:rows], J=2, orientations=8)
        np.testing.assert_allclose(ours[:rows], old, rtol=1e-5, atol=1e-5 * np.abs(old).max())


def test_features_are_computed_once_then_mapped_without_loading_the_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    first = _prepare(config)
    assert first.input_shape == (81, 2, 2) and len(first.x_train) == len(first.y_train) == 1347
    _forbid(monkeypatch)
    again = _prepare(config)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert isinstance(again.x_train, np.memmap) and isinstance(again.x_test, np.memmap)
    assert not again.x_train.flags.writeable and not again.x_test.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        again.x_train[0, 0, 0, 0] = 0.0


def test_a_client_copies_exactly_its_rows_of_the_mapped_split(tmp_path: Path) -> None:
    config = _config(tmp_path, "num_clients=3")
    dataset = _prepare(config)
    full = np.array(dataset.x_train)  # the whole split in memory, as before the cache was mapped
    for partition_id in range(3):
        idx = client_indices(dataset.y_train, config.partition, partition_id, 3, config.seed)
        mine = dataset.x_train[idx]
        assert type(mine) is np.ndarray and not np.shares_memory(mine, dataset.x_train)
        np.testing.assert_array_equal(mine, full[idx])


def test_the_test_split_alone_never_reads_the_training_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    full = _prepare(config)
    train_features = [p for p in tmp_path.glob("scattering-*.npy") if np.load(p, mmap_mode="r").shape[0] == 1347]
    assert len(train_features) == 1
    for path in [*train_features, *tmp_path.glob("*.train.*")]:  # the training split's files are gone
        path.unlink()
    _forbid(monkeypatch)
    test_only = _prepare(config, splits=("test",))
    np.testing.assert_array_equal(test_only.x_test, full.x_test)
    np.testing.assert_array_equal(test_only.y_test, full.y_test)
    assert test_only.x_train.shape == (0, 81, 2, 2) and test_only.y_train.shape == (0,)
    assert test_only.input_shape == full.input_shape and test_only.num_classes == 10
    with pytest.raises(AssertionError, match="although the features are on disk"):
        _prepare(config)  # the full dataset does need the training split, which is gone


def test_a_damaged_feature_file_is_recomputed_not_trusted(tmp_path: Path) -> None:
    config = _config(tmp_path)
    first = _prepare(config, splits=("test",))
    expected = np.array(first.x_test)
    (features,) = [p for p in tmp_path.glob("scattering-*.npy")]
    content = bytearray(features.read_bytes())
    content[-5] ^= 0x40  # one flipped bit in the last feature
    features.write_bytes(bytes(content))
    again = _prepare(config, splits=("test",))
    np.testing.assert_array_equal(again.x_test, expected)
    np.testing.assert_array_equal(np.load(features), expected)  # the file was replaced


def test_ensure_computes_the_other_splits_without_reading_them(tmp_path: Path) -> None:
    config = _config(tmp_path)
    server = _prepare(config, splits=("test",), ensure=SPLITS)
    assert len(server.x_train) == 0 and len(server.x_test) == 450
    assert len(list(tmp_path.glob("scattering-*.npy"))) == 2  # the clients' split is on disk too


def test_a_dataset_with_its_own_split_shares_features_across_seeds(
    tmp_path: Path, tiny_mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MNIST's split does not depend on the seed: another seed reloads the images, computes nothing."""
    cache = tmp_path / "cache"
    mnist = ["dataset=mnist", f"dataset.path={tiny_mnist_dir}", "features=scattering", f"features.cache_dir={cache}"]
    first = _prepare(compose_config([*mnist, "seed=0"]))
    _forbid(monkeypatch, loading=False)
    np.testing.assert_array_equal(_prepare(compose_config([*mnist, "seed=1"])).x_train, first.x_train)
    assert len(list(cache.glob("scattering-*.npy"))) == 2


def test_other_settings_get_their_own_cache_entry(tmp_path: Path) -> None:
    coarse = _prepare(_config(tmp_path, "features.J=1", "model=mlp"))
    fine = _prepare(_config(tmp_path, "features.J=2", "model=mlp"))
    assert coarse.input_shape == (9, 4, 4) and fine.input_shape == (81, 2, 2)
    assert len(list(tmp_path.glob("scattering-*.npy"))) == 4


def test_features_none_honours_splits_too(tmp_path: Path) -> None:
    config = compose_config(["dataset=digits", "features=none", "model=mlp"])
    test_only = _prepare(config, splits=["test"])
    assert test_only.x_train.shape == (0, 1, 8, 8) and len(test_only.x_test) == 450


@pytest.mark.parametrize("splits", [(), ("validation",), ("test", "test"), "test"])
def test_splits_must_name_the_dataset_s_splits(tmp_path: Path, splits: object) -> None:
    with pytest.raises(ValueError, match=r"splits must .*\('train', 'test'\), got"):
        _prepare(_config(tmp_path), splits=splits)


def _prepare_in_child(config: AureonConfig, out: Path) -> None:
    dataset = _prepare(config)
    np.save(out, np.concatenate([np.asarray(dataset.x_train).ravel(), np.asarray(dataset.x_test).ravel()]))


def test_processes_on_a_cold_cache_compute_each_split_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray workers starting together: one computes while the others wait, then all map the same files."""
    cache, log = tmp_path / "cache", tmp_path / "computed"
    real = prepare_module.scattering.scattering_batches

    def logged(images: np.ndarray, **kwargs: int) -> Iterator[np.ndarray]:
        with open(log, "a") as handle:
            handle.write(f"{len(images)}\n")
        time.sleep(0.5)  # long enough that the processes overlap
        yield from real(images, **kwargs)

    monkeypatch.setattr(prepare_module.scattering, "scattering_batches", logged)
    config = _config(cache)
    context = multiprocessing.get_context("fork")  # the children inherit the logging transform
    children = [context.Process(target=_prepare_in_child, args=(config, tmp_path / f"child{i}.npy")) for i in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
        assert child.exitcode == 0
    assert sorted(log.read_text().split()) == ["1347", "450"]  # each split computed by one process
    results = [np.load(tmp_path / f"child{i}.npy") for i in range(3)]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
