"""Apply the configured feature transform to a dataset, once per machine.

``prepare_dataset`` dispatches through the config registry; ``unchanged`` and
``scattered`` are the builders the features configs name. Each split's
scattering features are one file in the feature cache, memory-mapped by every
process that reads them: found through an index keyed by the dataset's
fingerprint, the transform's settings and the code of both, so a process with
a warm cache never loads the raw images; stored under the hash of the images
they were computed from, so another seed or an edit that leaves the images
unchanged reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from aureon.config import DatasetConfig, FeaturesConfig, NoFeaturesConfig, ScatteringFeaturesConfig
from aureon.config.registry import REGISTRY
from aureon.data import Dataset, load_dataset
from aureon.data.fingerprint import dataset_fingerprint
from aureon.data.partition_cache import default_partition_dir
from aureon.features import scattering
from aureon.features.cache import FeatureStore, default_cache_dir
from aureon.files import atomic_write_text

LOG = logging.getLogger(__name__)

SPLITS = ("train", "test")
_INDEX_FORMAT = 1


@dataclass(frozen=True)
class DatasetSource:
    """The dataset a transform applies to, loaded only by a transform that needs its images."""

    config: DatasetConfig
    seed: int

    def load(self) -> Dataset:
        """The dataset, kept in this process (``load_dataset``'s small cache)."""
        return load_dataset(self.config, self.seed)

    def load_once(self) -> Dataset:
        """The dataset, not kept: for a transform that stores what it computes from it."""
        return REGISTRY.build("dataset", self.config, expect=Dataset, seed=self.seed)


def only(dataset: Dataset, splits: Iterable[str]) -> Dataset:
    """``dataset`` with every split not in ``splits`` empty (0 rows, the same feature shape)."""
    kept = set(splits)
    return replace(
        dataset,
        x_train=dataset.x_train if "train" in kept else dataset.x_train[:0],
        y_train=dataset.y_train if "train" in kept else dataset.y_train[:0],
        x_test=dataset.x_test if "test" in kept else dataset.x_test[:0],
        y_test=dataset.y_test if "test" in kept else dataset.y_test[:0],
    )


def unchanged(
    config: NoFeaturesConfig, *, source: DatasetSource, splits: tuple[str, ...], ensure: tuple[str, ...]
) -> Dataset:
    """features=none: models see the standardised images themselves."""
    del config, ensure
    return only(source.load(), splits)


def _digest(*parts: object) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(repr(part).encode() + b"\0")
    return sha.hexdigest()[:32]


def _versions(*packages: str) -> tuple[tuple[str, str], ...]:
    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "-"

    return tuple((package, installed(package)) for package in packages)


@lru_cache(maxsize=8)
def _code_digest(*modules: str) -> str:
    """The source of ``modules`` (a package: all its modules): an edit must not serve stale features."""
    sha = hashlib.sha256()
    for name in modules:
        module = import_module(name)
        path = Path(str(module.__file__))
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for file in files:
            sha.update(file.name.encode() + b"\0" + file.read_bytes())
    return sha.hexdigest()[:16]


def _transform_id(config: ScatteringFeaturesConfig) -> str:
    """Everything that decides the features of given images."""
    code = _code_digest(scattering.__name__)
    return repr(("scattering", config.J, config.orientations, code, _versions("kymatio", "torch", "numpy")))


def _source_key(source: DatasetSource, transform: str) -> str:
    """Names the images a config loads, without loading them: files, settings, loader code."""
    builder = REGISTRY.option_of("dataset", source.config).builder or ""
    loader = _code_digest("aureon.data", builder.rpartition(".")[0] or "aureon.data")
    return _digest(
        dataset_fingerprint(source.config),
        repr(source.config),
        source.seed,
        loader,
        _versions("numpy", "scikit-learn", "mlxtend"),
        transform,
    )


def _progress(chunks: Iterator[np.ndarray], *, total: int, label: str) -> Iterator[np.ndarray]:
    """``chunks`` passed through, with a progress bar on the terminal (stderr)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(f"[bold]{label}", *columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        for chunk in chunks:
            yield chunk
            bar.advance(task, len(chunk))


@dataclass(frozen=True)
class _Split:
    x: np.ndarray
    y: np.ndarray
    num_classes: int


@dataclass(frozen=True)
class _Index:
    """Where a split's arrays are: its features (named by their images' content) and labels."""

    features: str
    labels: str
    num_classes: int

    def to_json(self) -> str:
        fields = {"features": self.features, "labels": self.labels, "num_classes": self.num_classes}
        return json.dumps({"format": _INDEX_FORMAT, **fields})

    @classmethod
    def from_json(cls, text: str) -> _Index:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != _INDEX_FORMAT:
            raise ValueError(f"not a format-{_INDEX_FORMAT} index")
        features, labels, num_classes = data.get("features"), data.get("labels"), data.get("num_classes")
        if not (isinstance(features, str) and isinstance(labels, str) and isinstance(num_classes, int)):
            raise ValueError("features, labels and num_classes must be two names and an integer")
        return cls(features=features, labels=labels, num_classes=num_classes)


class _ScatteringCache:
    """One config's scattering features: per split, an index, the labels and the features."""

    def __init__(self, config: ScatteringFeaturesConfig, source: DatasetSource) -> None:
        self.config = config
        self.source = source
        directory = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
        self.store = FeatureStore(directory)
        self.transform = _transform_id(config)
        self.key = _source_key(source, self.transform)

    def _index_path(self, split: str) -> Path:
        return self.store.directory / f"{self.key}.{split}.index.json"

    def _index(self, split: str) -> _Index | None:
        try:
            return _Index.from_json(self._index_path(split).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            LOG.warning("feature cache index %s is unreadable (%s); rebuilding it", self._index_path(split), err)
            return None

    def present(self, split: str) -> bool:
        """On disk at the recorded sizes (cheap: reads no feature bytes)."""
        index = self._index(split)
        return index is not None and self.store.present(index.features) and self.store.present(index.labels)

    def open(self, split: str) -> _Split | None:
        index = self._index(split)
        if index is None:
            return None
        x = self.store.open(index.features)
        y = self.store.open(index.labels) if x is not None else None
        if x is None or y is None or len(x) != len(y):
            return None
        return _Split(x=x, y=np.array(y), num_classes=index.num_classes)

    def compute(self, split: str, raw: Dataset) -> _Split:
        """Store ``split``'s labels and features (unless images of the same content have them)."""
        images, labels = (raw.x_train, raw.y_train) if split == "train" else (raw.x_test, raw.y_test)
        images = np.ascontiguousarray(images)
        content = hashlib.sha256(images.data).hexdigest()
        name = "scattering-" + _digest(self.transform, images.shape, images.dtype.str, content)
        x = self.store.open(name)
        if x is None:
            with self.store.locked(name):  # another config may map to the same images
                x = self.store.open(name)
                if x is None:
                    x = self._scatter(name, split, images)
        index = _Index(features=name, labels=f"{self.key}.{split}.labels", num_classes=raw.num_classes)
        y = self.store.write(index.labels, shape=labels.shape, dtype=labels.dtype, chunks=[labels])
        atomic_write_text(self._index_path(split), index.to_json())
        return _Split(x=x, y=np.array(y), num_classes=raw.num_classes)

    def _scatter(self, name: str, split: str, images: np.ndarray) -> np.ndarray:
        J, orientations = self.config.J, self.config.orientations
        shape = (len(images), *scattering.scattering_shape(images.shape[1:], J=J, orientations=orientations))
        started = time.perf_counter()
        batches = scattering.scattering_batches(images, J=J, orientations=orientations)
        label = f"scattering features, {split} split"
        chunks = _progress(batches, total=len(images), label=label)
        x = self.store.write(name, shape=shape, dtype=np.dtype(np.float32), chunks=chunks)
        LOG.info("%s: %d images in %.1f s", label, len(images), time.perf_counter() - started)
        return x


def scattered(
    config: ScatteringFeaturesConfig, *, source: DatasetSource, splits: tuple[str, ...], ensure: tuple[str, ...]
) -> Dataset:
    """features=scattering: computed once per machine, then memory-mapped from the disk cache.

    Only the files of ``splits`` are read; a split of ``ensure`` not on disk is
    computed too (from one load of the images) but not read.
    """
    cache = _ScatteringCache(config, source)
    opened = {split: cache.open(split) for split in splits}
    wanted = [s for s in splits if opened[s] is None] + [s for s in ensure if s not in splits and not cache.present(s)]
    if wanted:
        with cache.store.locked(cache.key):  # another process may be computing the same splits
            for split in splits:
                if opened[split] is None:
                    opened[split] = cache.open(split)
            wanted = [s for s in splits if opened[s] is None]
            wanted += [s for s in ensure if s not in splits and not cache.present(s)]
            if wanted:
                raw = cache.source.load_once()
                for split in wanted:
                    made = cache.compute(split, raw)
                    if split in splits:
                        opened[split] = made
    first = next(split for split in opened.values() if split is not None)

    def part(name: str) -> tuple[np.ndarray, np.ndarray]:
        split = opened.get(name)
        if split is None:
            return first.x[:0], first.y[:0]
        return split.x, split.y

    (x_train, y_train), (x_test, y_test) = part("train"), part("test")
    return Dataset(x_train, y_train, x_test, y_test, num_classes=first.num_classes)


def partition_cache_dir(features: FeaturesConfig) -> Path:
    """Where the clients' partition indices are kept: beside the feature cache.

    ``<features.cache_dir>/partitions`` when the transform names a cache folder
    (a benchmark's or a test's own), else ``$XDG_CACHE_HOME/aureon/partitions``.
    """
    chosen = getattr(features, "cache_dir", None)
    return Path(chosen).expanduser() / "partitions" if chosen else default_partition_dir()


def _splits(value: Iterable[str], *, argument: str, allow_empty: bool) -> tuple[str, ...]:
    chosen = tuple(value)
    if isinstance(value, str) or len(set(chosen)) != len(chosen) or not set(chosen) <= set(SPLITS):
        raise ValueError(f"{argument} must be distinct names from {SPLITS}, got {value!r}")
    if not chosen and not allow_empty:
        raise ValueError(f"{argument} must name at least one of {SPLITS}, got {value!r}")
    return tuple(s for s in SPLITS if s in chosen)


_PREPARED: dict[str, Dataset] = {}
_KEPT = 2  # datasets kept per process, newest last


def prepare_dataset(
    dataset_config: DatasetConfig,
    seed: int,
    features: FeaturesConfig,
    *,
    splits: Iterable[str] = SPLITS,
    ensure: Iterable[str] = (),
) -> Dataset:
    """The dataset as the model sees it: loaded, then transformed by ``features``.

    ``splits``: the splits to read; the others come back empty (0 rows), so the
    server, which evaluates, passes ``("test",)`` and never touches the training
    features. ``ensure``: splits whose features must be on disk when this
    returns, read or not (the driver of a simulation computes them once, with
    the terminal, before the workers need them). Kept per process (simulated
    clients train many rounds in one worker) and on disk (the transform's cost
    is paid once per machine, not once per run).
    """
    chosen = _splits(splits, argument="splits", allow_empty=False)
    ensured = _splits(ensure, argument="ensure", allow_empty=True)
    REGISTRY.option_of("features", features)  # an unknown transform fails before any loading
    key = repr((dataset_config, seed, features, chosen, ensured))
    if key not in _PREPARED:
        source = DatasetSource(dataset_config, seed)
        _PREPARED[key] = REGISTRY.build(
            "features", features, expect=Dataset, source=source, splits=chosen, ensure=ensured
        )
        while len(_PREPARED) > _KEPT:
            del _PREPARED[next(iter(_PREPARED))]
    return _PREPARED[key]
