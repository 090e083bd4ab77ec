"""Denoising a real photograph: a convolutional DAE against scikit-image's denoisers.

The test image is the crop of scikit-image's gallery "Wavelet denoising", in grey levels:
``img_as_float(rgb2gray(data.chelsea()))[100:250, 50:300]``, of shape (150, 250) in [0, 1].
The denoising autoencoder never sees it: it trains on random crops (``--patch-size``) of
scikit-image's other photographs (:data:`TRAINING_PHOTOS`, grey levels in [0, 1]; chelsea,
also shipped as ``cat``, is refused).

The DAE is :class:`ResidualDenoiser`, a fully convolutional network that predicts the noise
and subtracts it, so the whole 150x250 crop is denoised in one pass (no patches, no
averaging). It is one **blind** model: every training patch gets Gaussian noise of its own
σ, drawn uniformly in ``--train-sigmas`` at every step (:func:`blind_gaussian`, clipped to
[0, 1] like the test noise), and the same model denoises every evaluated level. It trains
with :func:`latent_jax.objectives.denoising_objective` and :func:`latent_jax.train.fit`.

At each level of ``--levels``, one noisy copy of the crop (Gaussian noise of that σ from a
fixed key, clipped to [0, 1]) is denoised by every method, each given the noise level
``sigma_est`` that scikit-image's ``estimate_sigma`` reads off the noisy image where it takes
one (as the gallery does):

* ``noisy``: the noisy image itself;
* ``wavelet-bayes``: ``denoise_wavelet(method='BayesShrink', mode='soft', rescale_sigma=True)``;
* ``wavelet-visu``: VisuShrink (soft) with ``sigma=sigma_est``; ``wavelet-visu-half`` with
  ``sigma=sigma_est / 2`` (two of the gallery's VisuShrink variants);
* ``tv-chambolle``: ``denoise_tv_chambolle`` with ``weight = sigma_est`` (our rule);
* ``nl-means``: ``denoise_nl_means(fast_mode=True, patch_size=5, patch_distance=6)`` with
  ``h = 0.8 sigma_est``; ``nl-means-sigma`` with ``h = 0.6 sigma_est, sigma=sigma_est``
  (the gallery's two settings);
* ``pca``: every ``--pca-patch-size`` square patch of the crop projected onto the first q
  principal axes of clean training-photo patches and the overlapping patches averaged
  (:class:`~latent_jax.pca_denoiser.PCADenoiser`); q is chosen per level on noisy
  patches of the training photographs, never on the test image;
* ``dae``: the denoising autoencoder.

Metrics per method and level: PSNR (``skimage.metrics.peak_signal_noise_ratio``,
``data_range=1``, checked against :func:`latent_jax.metrics.psnr` of the same error) and SSIM
(``structural_similarity``, ``data_range=1``). Writes into ``--out`` the DAE's run folder
(:mod:`latent_jax.runs`: config.json, history.csv and checkpoints/, every
``--checkpoint-every`` epochs; ``--resume`` continues the DAE from its last checkpoint),
metrics.json, denoised_photo.png (the clean crop, the noisy one and every method's output at
``--show-level``, PSNR in the titles) and psnr_vs_noise.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import plots, validation
from latent_jax.corruption import CorruptionFn, gaussian_noise
from latent_jax.experiments import common
from latent_jax.metrics import psnr
from latent_jax.models.inference import predict
from latent_jax.models.layers import FastConv
from latent_jax.objectives import denoising_objective
from latent_jax.pca_denoiser import PCADenoiser
from latent_jax.train import TrainConfig, fit
from latent_jax.train.config import LR_SCHEDULES

# scikit-image's shipped photographs the DAE trains on (chelsea, the test image, excluded).
TRAINING_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "moon",
    "page",
    "rocket",
    "text",
)
# The test photograph under both of its names in skimage.data.
TEST_PHOTO_NAMES = ("chelsea", "cat")
# The gallery's crop of chelsea: rows 100:250, columns 50:300.
CROP = (slice(100, 250), slice(50, 300))
METHODS = (
    "noisy",
    "wavelet-bayes",
    "wavelet-visu",
    "wavelet-visu-half",
    "tv-chambolle",
    "nl-means",
    "nl-means-sigma",
    "pca",
    "dae",
)
METHOD_NAMES = {
    "noisy": "Noisy",
    "wavelet-bayes": "Wavelet BayesShrink",
    "wavelet-visu": "Wavelet VisuShrink",
    "wavelet-visu-half": "VisuShrink σ/2",
    "tv-chambolle": "TV (Chambolle)",
    "nl-means": "NL-means",
    "nl-means-sigma": "NL-means (σ)",
    "pca": "PCA patches",
    "dae": "Denoising AE",
}
# Validation patches of the training photographs that choose PCA's number of components.
PCA_VALIDATION_PATCHES = 4000
# The gallery's NL-means patches.
_NL_MEANS_PATCH = {"patch_size": 5, "patch_distance": 6}
# The flags config.json keeps under "data" and "model" (the rest: "training", "settings").
DATA_FLAGS = ("photos", "patch_size", "n_patches")
MODEL_FLAGS = ("features", "depth")


def _skimage_data() -> Any:
    from skimage import data

    return data


def _as_grey(image: np.ndarray) -> np.ndarray:
    """A photograph as float grey levels in [0, 1] (colour through ``rgb2gray``)."""
    from skimage import img_as_float
    from skimage.color import rgb2gray

    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    return img_as_float(image)


def load_test_crop() -> np.ndarray:
    """The gallery's chelsea crop in grey levels.

    Returns:
        float64 array of shape (150, 250) in [0, 1]:
        ``img_as_float(rgb2gray(data.chelsea()))[100:250, 50:300]``.
    """
    return _as_grey(_skimage_data().chelsea())[CROP]


def load_training_photos(names: Sequence[str] = TRAINING_PHOTOS) -> list[np.ndarray]:
    """scikit-image's photographs ``names`` as grey levels.

    Args:
        names: names of functions of ``skimage.data`` that return a photograph; the test
            photograph (``chelsea``, alias ``cat``) is refused.

    Returns:
        One float32 array of shape (height, width) in [0, 1] per name.

    Raises:
        ValueError: for no names, the test photograph, or a name skimage.data does not have
            (or cannot load offline).
    """
    names = tuple(names)
    if not names:
        raise ValueError("photos must name at least one photograph of skimage.data, got none")
    data = _skimage_data()
    photos = []
    for name in names:
        if name in TEST_PHOTO_NAMES:
            raise ValueError(
                f"photos must not include the test photograph {name!r} "
                f"(skimage.data's {' / '.join(TEST_PHOTO_NAMES)})"
            )
        loader = getattr(data, name, None)
        if not callable(loader) or name.startswith("_"):
            raise ValueError(
                f"photos: skimage.data has no photograph {name!r}; shipped ones include "
                f"{', '.join(TRAINING_PHOTOS)}"
            )
        try:
            image = np.asarray(loader())
        except (ImportError, OSError, ValueError) as error:
            raise ValueError(
                f"photos: skimage.data.{name}() could not be loaded: {error}"
            ) from None
        if image.ndim not in (2, 3) or image.dtype == bool:
            raise ValueError(
                f"photos: skimage.data.{name}() is not a grey or colour photograph "
                f"(shape {image.shape}, dtype {image.dtype})"
            )
        photos.append(_as_grey(image).astype(np.float32))
    return photos


def sample_patches(key: Array, photos: Sequence[np.ndarray], n: int, size: int) -> np.ndarray:
    """``n`` random square crops of the photographs, drawn with ``key``.

    Each crop picks a photograph uniformly at random, then a top-left corner uniformly among
    the positions where the crop fits. The same key gives the same crops.

    Args:
        key: a ``jax.random`` key.
        photos: grey images, arrays of shape (height, width), each at least ``size`` tall
            and wide.
        n: how many crops, >= 1.
        size: their side in pixels, >= 1.

    Returns:
        float32 array of shape (n, size, size, 1).

    Raises:
        ValueError: for no photographs, a photograph smaller than ``size`` or that is not
            2-D, or ``n``/``size`` below 1.
    """
    key = validation.check_key("key", key)
    n = validation.check_int("n", n, 1)
    size = validation.check_int("size", size, 1)
    if not photos:
        raise ValueError("photos must hold at least one image, got none")
    for index, photo in enumerate(photos):
        shape = np.shape(photo)
        if len(shape) != 2 or min(shape) < size:
            raise ValueError(
                f"photos[{index}] must be a (height, width) image at least {size}x{size} "
                f"(size), got shape {shape}"
            )
    which_key, row_key, col_key = jax.random.split(key, 3)
    which = np.asarray(jax.random.randint(which_key, (n,), 0, len(photos)))
    heights = np.array([np.shape(p)[0] - size + 1 for p in photos])[which]
    widths = np.array([np.shape(p)[1] - size + 1 for p in photos])[which]
    # A uniform position in [0, limit): floor(u * limit), u in [0, 1).
    rows = np.floor(np.asarray(jax.random.uniform(row_key, (n,))) * heights).astype(int)
    cols = np.floor(np.asarray(jax.random.uniform(col_key, (n,))) * widths).astype(int)
    rows, cols = np.minimum(rows, heights - 1), np.minimum(cols, widths - 1)
    patches = np.empty((n, size, size, 1), np.float32)
    for i, (p, r, c) in enumerate(zip(which, rows, cols, strict=True)):
        patches[i, ..., 0] = photos[p][r : r + size, c : c + size]
    return patches


def blind_gaussian(
    low: float, high: float, *, clip: tuple[float, float] | None = (0.0, 1.0)
) -> CorruptionFn:
    r"""Gaussian noise of a random level per example: :math:`\sigma \sim U[low, high]`.

    A blind denoiser trains on it: every example of every batch gets its own σ, then
    independent noise of that σ on every pixel, clipped to ``clip``.

    Args:
        low: the smallest σ, >= 0.
        high: the largest σ, >= ``low``.
        clip: the valid range ``(low, high)`` of the noisy values, or None.

    Returns:
        ``corrupt(key, x) -> x_noisy`` for ``x`` of shape (batch, ...features).

    Raises:
        ValueError: for a negative ``low`` or ``high < low``.
    """
    low = validation.check_real("low", low, nonnegative=True)
    high = validation.check_real("high", high, nonnegative=True)
    if high < low:
        raise ValueError(f"high must be >= low, got low={low}, high={high}")

    def corrupt(key: Array, x: Array) -> Array:
        sigma_key, noise_key = jax.random.split(key)
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        sigma = jax.random.uniform(sigma_key, shape, x.dtype, low, high)
        noisy = x + sigma * jax.random.normal(noise_key, x.shape, x.dtype)
        return noisy if clip is None else jnp.clip(noisy, clip[0], clip[1])

    return corrupt


class ResidualDenoiser(nn.Module):
    """A fully convolutional denoiser that predicts the noise and subtracts it.

    ``depth`` 3x3 convolutions with "same" padding, ReLU between them: the first and the
    hidden ones have ``features`` channels, the last the image's; the output is the input
    less that residual, so images of any size are denoised in one pass (the residual
    learning of Zhang et al.'s DnCNN, without its BatchNorm).

    Attributes:
        features: channels of the hidden feature maps, >= 1.
        depth: number of convolutions, >= 2 (the receptive field is 2 depth + 1 pixels).
    """

    features: int = 32
    depth: int = 6

    def __post_init__(self) -> None:
        validation.check_int("features", self.features, 1)
        validation.check_int("depth", self.depth, 2)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Denoises images ``x`` of shape (batch, height, width, channels); same shape."""
        x = jnp.asarray(validation.check_array("x", x, finite=False, dtype="numeric"))
        if x.ndim != 4:
            raise ValueError(
                f"x must have shape (batch, height, width, channels), got shape {x.shape}"
            )
        h = x
        for i in range(self.depth):
            last = i == self.depth - 1
            h = nn.Conv(
                x.shape[-1] if last else self.features,
                (3, 3),
                padding=((1, 1), (1, 1)),
                conv_general_dilated_cls=FastConv,
                name=f"conv{i}",
            )(h)
            if not last:
                h = nn.relu(h)
        return x - h


def _estimate_sigma(noisy: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(noisy))


def skimage_denoisers(sigma_est: float) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """scikit-image's denoisers of the run, as functions of the noisy image.

    Args:
        sigma_est: the noise level estimated from the noisy image (``estimate_sigma``).

    Returns:
        Method name -> ``denoise(noisy)`` for a grey image of shape (height, width).
    """
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet

    def wavelet(**options: Any) -> Callable[[np.ndarray], np.ndarray]:
        return lambda noisy: denoise_wavelet(noisy, mode="soft", rescale_sigma=True, **options)

    return {
        "wavelet-bayes": wavelet(method="BayesShrink"),
        "wavelet-visu": wavelet(method="VisuShrink", sigma=sigma_est),
        "wavelet-visu-half": wavelet(method="VisuShrink", sigma=sigma_est / 2),
        "tv-chambolle": lambda noisy: denoise_tv_chambolle(noisy, weight=sigma_est),
        "nl-means": lambda noisy: denoise_nl_means(
            noisy, h=0.8 * sigma_est, fast_mode=True, **_NL_MEANS_PATCH
        ),
        "nl-means-sigma": lambda noisy: denoise_nl_means(
            noisy, h=0.6 * sigma_est, sigma=sigma_est, fast_mode=True, **_NL_MEANS_PATCH
        ),
    }


def pca_patch_denoise(denoiser: PCADenoiser, noisy: np.ndarray, q: int, size: int) -> np.ndarray:
    """Every ``size`` x ``size`` patch of ``noisy`` projected onto q axes, overlaps averaged.

    Args:
        denoiser: PCA of clean (size * size)-pixel patches.
        noisy: grey image of shape (height, width).
        q: the number of principal axes kept.
        size: the patch side the PCA was fitted on.

    Returns:
        The denoised image, shape (height, width), clipped to [0, 1].
    """
    from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d

    patches = extract_patches_2d(noisy, (size, size)).astype(np.float32)
    projected = denoiser(denoiser.codes(patches), q, patches.shape)
    image = reconstruct_from_patches_2d(projected.astype(np.float64), noisy.shape)
    return np.clip(image, 0.0, 1.0)


def scores(clean: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``output`` against ``clean``, both with ``data_range=1``.

    ``psnr_latent_jax`` is :func:`latent_jax.metrics.psnr` of the same mean squared error,
    for the check that the two PSNRs agree.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    clean, output = np.asarray(clean, np.float64), np.asarray(output, np.float64)
    mse = float(np.mean(np.square(output - clean)))
    return {
        "psnr": float(peak_signal_noise_ratio(clean, output, data_range=1.0)),
        "ssim": float(structural_similarity(clean, output, data_range=1.0)),
        "mse": mse,
        "psnr_latent_jax": psnr(mse, 1.0),
    }


@dataclasses.dataclass(frozen=True)
class Arguments(common.RunArguments):
    """The flags of ``latent-jax denoise-photo``, typed (:func:`add_arguments` defines them)."""

    levels: Sequence[float]
    show_level: float
    photos: Sequence[str]
    patch_size: int
    n_patches: int
    train_sigmas: Sequence[float]
    features: int
    depth: int
    epochs: int
    batch_size: int
    learning_rate: float
    pca_patch_size: int
    pca_patches: int
    seed: int
    quiet: bool
    out: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this experiment's flags."""
    noise = parser.add_argument_group("test image and noise")
    noise.add_argument(
        "--levels",
        type=common.float_tuple,
        default=(0.05, 0.12, 0.2, 0.3),
        help="Gaussian σ of the test noise, comma-separated",
    )
    noise.add_argument(
        "--show-level", type=float, default=0.12, help="the level of the figure of outputs"
    )
    train = parser.add_argument_group("denoising autoencoder")
    train.add_argument(
        "--photos",
        type=common.name_tuple,
        default=TRAINING_PHOTOS,
        help="skimage.data photographs to train on, comma-separated (never chelsea)",
    )
    train.add_argument("--patch-size", type=int, default=40, help="training crops' side")
    train.add_argument("--n-patches", type=int, default=5000, help="training crops")
    train.add_argument(
        "--train-sigmas",
        type=common.float_tuple,
        default=(0.02, 0.35),
        help="LOW,HIGH: the blind model's σ is drawn uniformly in [LOW, HIGH] per crop",
    )
    train.add_argument("--features", type=int, default=32, help="channels of the hidden maps")
    train.add_argument("--depth", type=int, default=6, help="convolutions of the DAE")
    train.add_argument("--epochs", type=int, default=5, help="training epochs")
    train.add_argument("--batch-size", type=int, default=32, help="crops per batch")
    train.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's step size")
    baseline = parser.add_argument_group("PCA baseline")
    baseline.add_argument(
        "--pca-patch-size", type=int, default=8, help="side of the PCA's square patches"
    )
    baseline.add_argument(
        "--pca-patches", type=int, default=20000, help="clean training patches of the PCA"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops, noise, training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", default="runs/denoise-photo", help="output folder")
    common.add_run_arguments(
        parser,
        lr_schedules=("cosine", *(s for s in LR_SCHEDULES if s != "cosine")),
        lr_schedule_help="the DAE's learning rate over its optimizer steps: cosine decay to "
        "0; constant; warmup-cosine (linear warm-up over the first 5%%, then cosine); "
        "exponential (decay to 1%% of --learning-rate)",
    )


def _check_args(args: Arguments) -> None:
    common.require_at_least(
        args, 1, "patch_size", "n_patches", "features", "epochs", "batch_size", "pca_patches"
    )
    common.require_at_least(args, 2, "depth", "pca_patch_size")
    common.require_at_least(args, 0, "seed")
    if not math.isfinite(args.learning_rate) or args.learning_rate <= 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    for level in args.levels:
        if not math.isfinite(level) or level <= 0:
            raise ValueError(f"--levels must be > 0, got {level}")
    if args.show_level not in args.levels:
        raise ValueError(f"--show-level {args.show_level} is not one of --levels {args.levels}")
    if len(args.train_sigmas) != 2 or not 0 <= args.train_sigmas[0] <= args.train_sigmas[1]:
        raise ValueError(
            f"--train-sigmas must be LOW,HIGH with 0 <= LOW <= HIGH, got {args.train_sigmas}"
        )
    if not args.photos:
        raise ValueError("--photos must name at least one photograph")
    try:
        import pywt  # noqa: F401
    except ImportError:
        raise ValueError(
            "denoise-photo's wavelet denoisers need the PyWavelets package: "
            "pip install 'latent-jax[photo]'"
        ) from None
    crop = load_test_crop()
    if args.pca_patch_size > min(crop.shape):
        raise ValueError(
            f"--pca-patch-size must be at most {min(crop.shape)} (the test crop's height), "
            f"got {args.pca_patch_size}"
        )
    common.check_run_arguments(args)


def _load_photos(args: Arguments) -> list[np.ndarray]:
    photos = load_training_photos(args.photos)
    side = max(args.patch_size, args.pca_patch_size)
    small = [n for n, p in zip(args.photos, photos, strict=True) if min(p.shape) < side]
    if small:
        raise ValueError(
            f"--photos {', '.join(small)} are smaller than the patches ({side} pixels: "
            "--patch-size / --pca-patch-size)"
        )
    return photos


def run(args: Arguments) -> dict:
    """Runs the experiment and returns the metrics written to ``metrics.json``."""
    flags = common.RunFlags.from_flags(args)
    _check_args(args)
    photos = _load_photos(args)
    clean = load_test_crop()
    # Keys: 0 the DAE's crops, 1 its training, 2 the PCA's patches, 3 their validation
    # noise, 4 the test noise (one key per level folded in).
    key = jax.random.key(args.seed)
    patch_key, train_key, pca_key, pca_noise_key, noise_key = (
        jax.random.fold_in(key, i) for i in range(5)
    )
    train_config = TrainConfig(
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        quiet=args.quiet,
        log_every=0,
        **common.checkpoint_options(flags, args.out, args.epochs),
        **common.train_options(flags),
    )
    out = common.prepare_output_dir(args.out)  # after every check and the data
    common.write_run_config(
        out,
        args,
        command="denoise-photo",
        data_flags=DATA_FLAGS,
        model_flags=MODEL_FLAGS,
        training=train_config,
    )

    cpu_start = time.process_time()
    start = time.perf_counter()
    patches = sample_patches(patch_key, photos, args.n_patches, args.patch_size)
    model = ResidualDenoiser(features=args.features, depth=args.depth)
    low, high = args.train_sigmas
    with common.training_in(out, flags, train_config.checkpoint_dir) as (
        callbacks,
        resume,
    ):
        state, history = fit(
            denoising_objective(model, blind_gaussian(low, high)),
            patches,
            None,
            train_config,
            train_key,
            callbacks=callbacks,
            **resume,
        )
    dae_seconds = time.perf_counter() - start

    start = time.perf_counter()
    pca_clean = sample_patches(
        pca_key, photos, args.pca_patches + PCA_VALIDATION_PATCHES, args.pca_patch_size
    )
    pca_train, pca_val = pca_clean[: args.pca_patches], pca_clean[args.pca_patches :]
    pca_denoiser = PCADenoiser(pca_train)
    pca_seconds = time.perf_counter() - start

    results, shown, seconds = [], {}, {m: 0.0 for m in METHODS[1:]}
    seconds["dae"], seconds["pca"] = dae_seconds, pca_seconds
    for index, level in enumerate(args.levels):
        noisy = np.asarray(
            gaussian_noise(jax.random.fold_in(noise_key, index), clean, level, clip=(0.0, 1.0)),
            np.float64,
        )
        sigma_est = _estimate_sigma(noisy)
        outputs = {"noisy": noisy}
        for name, denoise in skimage_denoisers(sigma_est).items():
            tic = time.perf_counter()
            outputs[name] = np.clip(denoise(noisy), 0.0, 1.0)
            seconds[name] += time.perf_counter() - tic
        tic = time.perf_counter()
        val_noisy = np.asarray(
            gaussian_noise(jax.random.fold_in(pca_noise_key, index), pca_val, level, clip=(0, 1))
        )
        q = pca_denoiser.best_components(val_noisy, pca_val, clip=True)
        outputs["pca"] = pca_patch_denoise(pca_denoiser, noisy, q, args.pca_patch_size)
        seconds["pca"] += time.perf_counter() - tic
        tic = time.perf_counter()
        denoised = predict(model, state.variables, noisy[None, :, :, None].astype(np.float32))
        outputs["dae"] = np.clip(np.asarray(denoised, np.float64)[0, :, :, 0], 0.0, 1.0)
        seconds["dae"] += time.perf_counter() - tic
        results.append(
            {
                "level": level,
                "sigma_est": sigma_est,
                "pca_n_components": q,
                "methods": {name: scores(clean, output) for name, output in outputs.items()},
            }
        )
        if level == args.show_level:
            shown = outputs

    levels = list(args.levels)
    table = {
        metric: {m: [r["methods"][m][metric] for r in results] for m in METHODS}
        for metric in ("psnr", "ssim")
    }
    agreement = max(
        abs(s["psnr"] - s["psnr_latent_jax"]) for r in results for s in r["methods"].values()
    )
    show = next(r for r in results if r["level"] == args.show_level)
    plots.image_strip(
        np.stack([clean, *(shown[m] for m in METHODS)]),
        os.path.join(out, "denoised_photo.png"),
        f"Chelsea crop (grey), Gaussian noise σ = {args.show_level:g}",
        nrows=2,
        captions=[
            "Clean",
            *(f"{METHOD_NAMES[m]}\n{show['methods'][m]['psnr']:.2f} dB" for m in METHODS),
        ],
        figsize=(15.0, 5.4),
        vmin=0.0,
        vmax=1.0,
    )
    plots.psnr_vs_noise(
        levels,
        {METHOD_NAMES[m]: v for m, v in table["psnr"].items()},
        os.path.join(out, "psnr_vs_noise.png"),
        xlabel="Gaussian noise σ",
        title="Denoising the chelsea crop: PSNR against σ",
    )
    metrics = {
        "test_image": "img_as_float(rgb2gray(skimage.data.chelsea()))[100:250, 50:300]",
        "test_shape": list(clean.shape),
        "training_photos": list(args.photos),
        "levels": levels,
        "show_level": args.show_level,
        "methods": list(METHODS),
        "dae": {
            "model": "ResidualDenoiser",
            "features": args.features,
            "depth": args.depth,
            "parameters": int(
                sum(np.size(p) for p in jax.tree_util.tree_leaves(state.variables["params"]))
            ),
            "blind": True,
            "train_sigmas": list(args.train_sigmas),
            "patch_size": args.patch_size,
            "n_patches": args.n_patches,
            "applied": "fully convolutional, the whole crop in one pass",
            "training": train_config.to_dict(),
            "train_loss": np.asarray(history["train_loss"]).tolist(),
        },
        "pca": {"patch_size": args.pca_patch_size, "n_patches": args.pca_patches},
        "results": results,
        "psnr": table["psnr"],
        "ssim": table["ssim"],
        "psnr_agreement_max_abs_diff_db": agreement,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_start,
        "environment": common.environment_info(),
    }
    common.write_json(os.path.join(out, "metrics.json"), metrics)
    _print_summary(metrics, out)
    return metrics


def _print_summary(metrics: dict, out: str) -> None:
    print("Denoising the chelsea crop (150x250, grey): PSNR dB / SSIM")
    print(f"{'method':>20} " + " ".join(f"{f'σ={v:g}':>15}" for v in metrics["levels"]))
    for m in METHODS:
        cells = " ".join(
            f"{p:>7.2f} / {s:.3f}"
            for p, s in zip(metrics["psnr"][m], metrics["ssim"][m], strict=True)
        )
        print(f"{METHOD_NAMES[m]:>20} {cells}")
    print(f"DAE trained in {metrics['seconds']['dae']:.1f} s. Outputs in {out}/")
