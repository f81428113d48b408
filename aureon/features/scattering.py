"""The 2D scattering transform: kymatio's filters and definition, computed in batches on all cores.

kymatio's torch frontend spends its time in a Python loop over the 81 paths
(J=2, L=8), each with complex reductions over strided views. The coefficients
here are the same (kymatio's filter bank, padding and order; the tests compare
the two), with every path of one scale in one tensor: the wavelet product and
its periodization fused (a sum over the k*k aliases, computed at the subsampled
size), one FFT per scale, and each low-pass-and-subsample done as a matrix
product in the spatial domain.
Batches are spread over threads (torch releases the GIL), one torch thread each.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from aureon.exceptions import ConfigError

BATCH = 16  # images per batch: measured fastest per image; larger ones fall out of the CPU caches


def _aliases(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """(..., H, W) -> (..., k, k, H/k, W/k): the blocks that a periodization by ``k`` sums."""
    *lead, height, width = tensor.shape
    n = len(lead)
    blocks = tensor.reshape(*lead, k, height // k, k, width // k)
    return blocks.permute(*range(n), n, n + 2, n + 1, n + 3).contiguous()


def _periodized_product(blocks: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Spectrum (..., k, k, h, w) times filters (k, k, L, h, w), periodized: (..., L, h, w).

    Summing the aliases' products directly keeps the result contiguous for the FFT
    that follows (an ``einsum`` here returns it transposed, and the copy costs more
    than the product).
    """
    k = filters.shape[0]
    out = blocks[..., 0, 0, :, :].unsqueeze(-3) * filters[0, 0]
    for a in range(k):
        for b in range(k):
            if a or b:
                out += blocks[..., a, b, :, :].unsqueeze(-3) * filters[a, b]
    return out


def _modulus(z: torch.Tensor) -> torch.Tensor:
    # sqrt(Re(z * conj(z))): measured faster than torch.abs or torch.hypot on complex64
    return (z * z.conj()).real.sqrt()


@dataclass(frozen=True)
class _Plan:
    """Everything that depends on (J, L, image size) only: built once, shared by the threads."""

    J: int
    L: int
    pad: Callable[[torch.Tensor], torch.Tensor]
    lowpass: tuple[torch.Tensor, ...]  # per resolution r: (h_r * w_r, out_h * out_w), real
    first: tuple[torch.Tensor, ...]  # per scale j: (k, k, L, h, w) complex, k = 2^j
    second: dict[tuple[int, int], torch.Tensor]  # (j1, j2): (k, k, L, h, w) complex at resolution j1
    out_shape: tuple[int, int]


def _lowpass_matrix(phi: torch.Tensor, k: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """The linear map of kymatio's low-pass, subsampling by ``k`` and unpadding, as a matrix.

    Built in float64 by applying the Fourier-domain definition to every unit impulse
    (a few hundred at a time, so a large image does not need its whole square at once).
    """
    height, width = phi.shape
    rows = []
    for start in range(0, height * width, 512):
        impulses = torch.zeros(min(512, height * width - start), height * width, dtype=torch.float64)
        impulses[torch.arange(len(impulses)), torch.arange(start, start + len(impulses))] = 1.0
        spectrum = _aliases(torch.fft.fft2(impulses.reshape(-1, height, width)) * phi, k).mean(dim=(-4, -3))
        rows.append(torch.fft.ifft2(spectrum).real[..., 1:-1, 1:-1])
    out = torch.cat(rows)
    return out.reshape(height * width, -1).float().contiguous(), (out.shape[-2], out.shape[-1])


@lru_cache(maxsize=4)
def _plan(J: int, L: int, height: int, width: int) -> _Plan:
    # kymatio's top-level ``kymatio.torch`` also imports its 3D transform, which needs
    # ``scipy.special.sph_harm`` (gone from recent SciPy); these 2D modules do not.
    from kymatio.scattering2d.backend.torch_backend import Pad
    from kymatio.scattering2d.filter_bank import filter_bank
    from kymatio.scattering2d.utils import compute_padding

    padded_h, padded_w = compute_padding(height, width, J)
    pad = Pad(
        [
            (padded_h - height) // 2,
            (padded_h - height + 1) // 2,
            (padded_w - width) // 2,
            (padded_w - width + 1) // 2,
        ],
        [height, width],
    )
    bank = filter_bank(padded_h, padded_w, J, L)
    lowpass, out_shape = [], (0, 0)
    for res, phi in enumerate(bank["phi"]["levels"]):
        matrix, out_shape = _lowpass_matrix(torch.from_numpy(phi).double(), 2 ** (J - res))
        lowpass.append(matrix)

    def wavelets(scale: int, res: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([p["levels"][res] for p in bank["psi"] if p["j"] == scale]))

    def periodized(scale: int, res: int) -> torch.Tensor:
        """The wavelets of ``scale`` at resolution ``res`` as (k, k, L, h, w) alias blocks.

        The periodization's mean (1/k^2) is folded in.
        """
        k = 2 ** (scale - res)
        blocks = _aliases(wavelets(scale, res), k).permute(1, 2, 0, 3, 4).contiguous()
        return blocks.to(torch.complex64) / (k * k)

    first = tuple(periodized(j, 0) for j in range(J))
    second = {(j1, j2): periodized(j2, j1) for j1 in range(J) for j2 in range(j1 + 1, J)}
    return _Plan(J=J, L=L, pad=pad, lowpass=tuple(lowpass), first=first, second=second, out_shape=out_shape)


def _transform(plan: _Plan, images: torch.Tensor) -> torch.Tensor:
    """(n, H, W) real images -> (n, K, out_h * out_w) coefficients in kymatio's path order."""
    padded = plan.pad(images)[..., 0]
    n, L = padded.shape[0], plan.L
    spectrum = torch.fft.fft2(padded.to(torch.complex64))
    order0 = [(padded.reshape(n, -1) @ plan.lowpass[0])[:, None]]
    order1, order2 = [], []
    for j1 in range(plan.J):
        product = _periodized_product(_aliases(spectrum, 2**j1), plan.first[j1])
        u1 = _modulus(torch.fft.ifft2(product))  # (n, L, h, w)
        order1.append(u1.reshape(n, L, -1) @ plan.lowpass[j1])
        if j1 == plan.J - 1:
            continue
        u1_spectrum = torch.fft.fft2(u1.to(torch.complex64))
        per_j2 = []
        for j2 in range(j1 + 1, plan.J):
            aliases = _aliases(u1_spectrum, 2 ** (j2 - j1))
            u2 = _modulus(torch.fft.ifft2(_periodized_product(aliases, plan.second[j1, j2])))
            per_j2.append(u2.reshape(n, L, L, -1) @ plan.lowpass[j2])
        # kymatio's order: for each first-order path, its second-order paths by (j2, theta2)
        order2.append(torch.cat(per_j2, dim=2).reshape(n, -1, per_j2[0].shape[-1]))
    return torch.cat(order0 + order1 + order2, dim=1)


def _check(shape: tuple[int, ...], J: int) -> None:
    if len(shape) != 4:
        raise ConfigError(f"features=scattering needs images shaped (N, C, H, W), got {shape}")
    height, width = shape[2], shape[3]
    if height % 2**J or width % 2**J:
        raise ConfigError(
            f"features.J must leave the image size divisible by 2^J, got J={J} for {height}x{width} images"
        )


def scattering_shape(image_shape: tuple[int, ...], *, J: int, orientations: int) -> tuple[int, int, int]:
    """The (C * K, H / 2^J, W / 2^J) feature maps of one (C, H, W) image."""
    _check((0, *image_shape), J)
    channels, height, width = image_shape
    paths = 1 + J * orientations + orientations**2 * J * (J - 1) // 2
    return channels * paths, height // 2**J, width // 2**J


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scattering_batches(
    images: np.ndarray,
    *,
    J: int,
    orientations: int,
    batch_size: int = BATCH,
    threads: int | None = None,
) -> Iterator[np.ndarray]:
    """The features of ``images`` (N, C, H, W), batch by batch and in order, as float32.

    ``threads`` batches run at once (default: every core this process may use);
    at most two batches per thread wait to be consumed, so memory stays bounded.
    """
    _check(images.shape, J)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    n, channels, height, width = images.shape
    maps, out_h, out_w = scattering_shape(images.shape[1:], J=J, orientations=orientations)
    plan = _plan(J, orientations, height, width)

    def run(start: int) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32))
        with torch.no_grad():
            coefficients = _transform(plan, batch.reshape(-1, height, width))
        return coefficients.reshape(len(batch), maps, out_h, out_w).numpy()

    workers = max(1, threads or _threads())
    starts = range(0, n, batch_size)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # parallel over batches: no per-operation thread barriers
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scattering") as pool:
            pending: list[Future[np.ndarray]] = []
            for start in starts:
                pending.append(pool.submit(run, start))
                if len(pending) >= 2 * workers:
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()
    finally:
        torch.set_num_threads(saved)


def scattering_features(images: np.ndarray, *, J: int, orientations: int) -> np.ndarray:
    """(N, C, H, W) images -> (N, C * K, H / 2^J, W / 2^J) float32 scattering maps.

    K = 1 + J*L + L^2*J*(J-1)/2 coefficients per image channel (81 for J=2, L=8).
    """
    _check(images.shape, J)
    shape = (len(images), *scattering_shape(images.shape[1:], J=J, orientations=orientations))
    out = np.empty(shape, dtype=np.float32)
    row = 0
    for chunk in scattering_batches(images, J=J, orientations=orientations):
        out[row : row + len(chunk)] = chunk
        row += len(chunk)
    return out
