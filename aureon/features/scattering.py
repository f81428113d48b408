"""The 2D scattering transform, computed with kymatio in batches."""

from __future__ import annotations

import numpy as np
import torch

from aureon.exceptions import ConfigError

BATCH = 1024


def _scattering_class() -> type:
    # kymatio's top-level ``kymatio.torch`` also imports its 3D transform, which needs
    # ``scipy.special.sph_harm`` (gone from recent SciPy); the 2D frontend does not.
    from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D

    return ScatteringTorch2D


def scattering_features(images: np.ndarray, *, J: int, orientations: int) -> np.ndarray:
    """(N, C, H, W) images -> (N, C * K, H / 2^J, W / 2^J) float32 scattering maps.

    K = 1 + J*L + L^2*J*(J-1)/2 coefficients per image channel (81 for J=2, L=8).
    """
    if images.ndim != 4:
        raise ConfigError(f"features=scattering needs images shaped (N, C, H, W), got {images.shape}")
    n, channels, height, width = images.shape
    step = 2**J
    if height % step or width % step:
        raise ConfigError(
            f"features.J must leave the image size divisible by 2^J, got J={J} for {height}x{width} images"
        )
    transform = _scattering_class()(J=J, shape=(height, width), L=orientations)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + BATCH]))
            maps = transform(batch)  # (b, C, K, H', W')
            chunks.append(maps.reshape(len(batch), -1, *maps.shape[-2:]).numpy())
    if not chunks:
        return np.zeros((0, channels, height // step, width // step), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)
