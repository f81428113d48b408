"""The scattering transform: kymatio's coefficients, shapes, batching, no dependence between examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aureon.config import scattering_maps
from aureon.exceptions import ConfigError
from aureon.features.scattering import scattering_batches, scattering_features, scattering_shape


def _kymatio(images: np.ndarray, *, J: int, orientations: int) -> np.ndarray:
    """What features=scattering computed before: kymatio's own torch frontend, in one batch."""
    from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D

    transform = ScatteringTorch2D(J=J, shape=images.shape[-2:], L=orientations)
    with torch.no_grad():
        maps = transform(torch.from_numpy(images))
    return maps.reshape(len(images), -1, *maps.shape[-2:]).numpy()


@pytest.mark.parametrize(
    ("size", "J", "orientations"),
    [((28, 28), 2, 8), ((8, 8), 2, 8), ((8, 8), 3, 4), ((28, 28), 1, 4), ((16, 24), 2, 5), ((32, 32), 4, 3)],
)
def test_coefficients_are_kymatio_s_in_kymatio_s_order(size: tuple[int, int], J: int, orientations: int) -> None:
    images = np.random.default_rng(J).normal(size=(7, 2, *size)).astype(np.float32)
    ours = scattering_features(images, J=J, orientations=orientations)
    reference = _kymatio(images, J=J, orientations=orientations)
    assert ours.shape == reference.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())


def test_maps_count_and_size_follow_J_and_orientations() -> None:
    images = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    maps = scattering_features(images, J=2, orientations=8)
    assert maps.shape == (3, scattering_maps(2, 8), 7, 7) == (3, 81, 7, 7)
    assert scattering_shape((1, 28, 28), J=2, orientations=8) == (81, 7, 7)
    assert scattering_features(images, J=1, orientations=4).shape == (3, 5, 14, 14)
    assert scattering_features(images[:0], J=2, orientations=8).shape == (0, 81, 7, 7)


def test_an_example_s_features_do_not_depend_on_the_others() -> None:
    """A fixed transform learns nothing from the data, so it spends no privacy budget."""
    images = np.random.default_rng(1).normal(size=(6, 1, 8, 8)).astype(np.float32)
    together = scattering_features(images, J=2, orientations=8)
    alone = np.concatenate([scattering_features(images[i : i + 1], J=2, orientations=8) for i in range(6)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_batches_come_in_order_whatever_the_threads() -> None:
    images = np.random.default_rng(2).normal(size=(23, 1, 8, 8)).astype(np.float32)
    whole = scattering_features(images, J=2, orientations=8)
    threads_before = torch.get_num_threads()
    chunks = list(scattering_batches(images, J=2, orientations=8, batch_size=4, threads=3))
    assert [len(c) for c in chunks] == [4, 4, 4, 4, 4, 3]
    np.testing.assert_allclose(np.concatenate(chunks), whole, rtol=1e-6, atol=1e-7)
    assert torch.get_num_threads() == threads_before  # restored for the training that follows


def test_wrong_shapes_are_refused_with_the_key() -> None:
    with pytest.raises(ConfigError, match=r"features.J must .* got J=4 for 8x8 images"):
        scattering_features(np.zeros((2, 1, 8, 8), np.float32), J=4, orientations=8)
    with pytest.raises(ConfigError, match=r"needs images shaped \(N, C, H, W\), got \(2, 8, 8\)"):
        scattering_features(np.zeros((2, 8, 8), np.float32), J=2, orientations=8)
