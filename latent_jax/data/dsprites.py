"""dSprites: DeepMind's ground-truth-factor images, rendered on demand or read from the file.

dSprites (Matthey et al. 2017, https://github.com/deepmind/dsprites-dataset) is every
combination of five factors drawn as one white sprite on black, 64×64 binary images:

===============  ======  ================================================================
factor           values  grid (DeepMind's ``latents_values``)
===============  ======  ================================================================
``shape``        3       square, ellipse, heart (codes 1, 2, 3)
``scale``        6       ``linspace(0.5, 1, 6)``
``orientation``  40      ``linspace(0, 2π, 40)`` radians: both ends are in the grid
``posX``         32      ``linspace(0, 1, 32)``
``posY``         32      ``linspace(0, 1, 32)``
===============  ======  ================================================================

737,280 images in DeepMind's order: image ``i`` has the factors of
``np.unravel_index(i, (3, 6, 40, 32, 32))`` (posY varies fastest, then posX, orientation, scale,
shape; :meth:`DSprites.factors_to_index`). DeepMind's file also has a first factor, ``color``,
of one value; as disentanglement_lib's ``DSprites`` (``latent_factor_indices=[1, ..., 5]``,
its ``dsprites_full``) this module leaves that constant out, so factors are rows of five
indices.

**The grid's repetitions.** The orientation grid holds both 0 and 2π, so orientation 0 and 39
draw the same image for every shape (DeepMind's issue #7 notes the same of their file). The
square looks the same after a quarter turn and the ellipse after a half turn, so their
orientation is only seen modulo 90° and 180°: two of their orientations a quarter (half) turn
apart give the same image, and since 2π/39 does not divide π/2 such pairs on the grid are only
near-coincident (index 10 of the square is index 0 turned by 2.3°). This holds of DeepMind's
images too, and bounds what any metric can expect a model to recover of those orientations.
Of the 737,280 images drawn here, 712,367 are distinct: orientation 39 repeats orientation 0
(in all but one of the 18,432 pairs, where a pixel centre lies within rounding of a heart's
outline), and 10,596 more images (6,880 squares, 3,704 ellipses and 12 hearts, 94% of them at
scales 0.5 to 0.7) draw the same pixels as the same sprite at another orientation.

**How the images are drawn here.** DeepMind drew with the LÖVE engine (vector shapes
rasterized by OpenGL); the program is not public, so these images cannot be theirs bit for bit.
Here a pixel is white when its centre lies inside the sprite (the rule by which OpenGL fills
polygons, with no antialiasing), evaluated for all pixels at once by a compiled JAX program. In
pixel units, with ``x`` to the right (columns) and ``y`` down (rows), pixel ``(row, col)``
centred at ``(col + 0.5, row + 0.5)``:

* at scale 1 the square is 20 px wide (a third of the image, within the quarter to a third
  that DeepMind's sprites span; their exact sizes, the ellipse's proportions and the heart's
  outline are not published), the ellipse 20 × 10 px (long axis horizontal at orientation 0),
  the heart 20 px wide and 19.6 px tall (point down at orientation 0); a scale ``s`` multiplies
  every length by ``s``;
* the heart is the curve ``(x² + y² − 1)³ = x² y³`` (y up), its inside ``≤ 0``, scaled so
  that its width matches the square's; each shape is placed and turned about its centroid, so
  the sprite's centre of mass is its position whatever its orientation;
* orientation ``θ`` turns the sprite clockwise as displayed (row 0 on top), the sense of a
  rotation in LÖVE's y-down canvas;
* ``posX``, ``posY`` in [0, 1] put the centroid at ``14.25 + 35.5 · pos`` px: 14.25 to
  49.75 px (symmetric about the image's centre), steps of 1.145 px, placed so that no edge of the
  square or the ellipse at orientation 0 falls on a pixel centre, where float rounding would
  decide the pixel. The farthest point of any sprite from its centroid is the square's corner,
  10√2 = 14.14 px at scale 1 (the heart's tip is 11.36 px, the ellipse's end 10 px), so every
  sprite stays inside the 64×64 frame at every orientation and position.

With DeepMind's file (:meth:`DSprites.from_npz`) the images are theirs instead: its ``imgs``
(uint8 0/1) indexed by :meth:`~DSprites.factors_to_index`.

**Variants with a continuous nuisance** (disentanglement_lib's, observation shape (64, 64, 3)):
``"color"`` multiplies the sprite by a colour drawn uniformly in [0.5, 1]³ per image
(``ColorDSprites``), ``"noisy"`` puts the white sprite over uniform noise in [0, 1]³ per pixel
(``NoisyDSprites``: ``min(sprite + noise, 1)``). The factors are the same five; the nuisance
is drawn from the key passed with the factors.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax import validation
from latent_jax.data.tabular import check_regular_file

DSPRITES = "dsprites"
OFFICIAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
# DeepMind's latents_values of each factor (the shape's are codes 1, 2, 3).
FACTOR_VALUES = (
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2.0 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
NUM_IMAGES = math.prod(FACTOR_SIZES)
IMAGE_SIZE = 64
VARIANTS = ("plain", "color", "noisy")
# The named data set "dsprites": this many distinct images of the grid, drawn with this seed.
DEFAULT_SUBSET_SIZE = 20_000
DEFAULT_SUBSET_SEED = 0

# The drawing, in pixels (see the module's docstring).
HALF_WIDTH = 10.0  # half the square's side at scale 1
# The centroid at pos 0 and its travel to pos 1 (IMAGE_SIZE - POSITION_MARGIN): chosen so that
# no grid position puts an edge of the square or the ellipse at orientation 0 on a pixel centre,
# where float rounding would decide the pixel.
POSITION_MARGIN = 14.25
POSITION_SPAN = IMAGE_SIZE - 2 * POSITION_MARGIN
ELLIPSE_ASPECT = 0.5  # the short half-axis over the long one
# The heart (x² + y² − 1)³ ≤ x² y³ spans |x| <= 1.139028 (at y = 0.5453) and y in
# [-1, 1.23607]; its centroid is at y = 0.293471 (area 3.661931), found by integrating its
# width over y.
HEART_HALF_WIDTH = 1.139028
HEART_CENTROID_Y = 0.293471

_OFFICIAL_ROWS = (NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE)
# Images rendered per compiled call; smaller requests are padded to a power of two, so at most
# eight programs are compiled.
_CHUNK = 8192
_SMALLEST_CALL = 64


def factor_values(factors: Any) -> np.ndarray:
    """The factors' values, DeepMind's ``latents_values`` without its constant ``color``.

    Args:
        factors: int array of shape (n, 5), indices of (shape, scale, orientation, posX, posY).

    Returns:
        float64 array of shape (n, 5): shape code (1 square, 2 ellipse, 3 heart), scale,
        orientation in radians, posX, posY.
    """
    factors = _check_factors(factors)
    return np.stack([values[factors[:, i]] for i, values in enumerate(FACTOR_VALUES)], axis=1)


def factors_to_index(factors: Any) -> np.ndarray:
    """The rows of DeepMind's file that hold these factors (posY fastest, then posX, ...).

    Args:
        factors: int array of shape (n, 5).

    Returns:
        int64 array of shape (n,) in [0, 737280).
    """
    factors = _check_factors(factors)
    return np.ravel_multi_index(tuple(factors.T), FACTOR_SIZES).astype(np.int64)


def index_to_factors(index: Any) -> np.ndarray:
    """The factors of rows of DeepMind's file (:func:`factors_to_index` inverted).

    Args:
        index: int array of shape (n,) in [0, 737280).

    Returns:
        int64 array of shape (n, 5).
    """
    index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"index must be an integer array of shape (n,), got dtype {index.dtype}")
    if index.ndim != 1:
        raise ValueError(f"index must have shape (n,), got shape {index.shape}")
    bad = (index < 0) | (index >= NUM_IMAGES)
    if bad.any():
        raise ValueError(
            f"index must be in [0, {NUM_IMAGES}), got {index[bad][0]} at position "
            f"{np.flatnonzero(bad)[0]}"
        )
    return np.stack(np.unravel_index(index, FACTOR_SIZES), axis=1).astype(np.int64)


def _generator(key: Any) -> np.random.Generator:
    """A NumPy generator seeded with a ``jax.random`` key's data.

    The draws of this module are host data (factors, colours, noise), made here rather than by
    ``jax.random``, which compiles a program for every new shape (0.7 to 1.9 s each on a
    2-core CPU); they are as reproducible: the same key gives the same draws.
    """
    key = validation.check_key("key", key)
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())


def _check_factors(factors: Any, name: str = "factors") -> np.ndarray:
    """``factors`` as int64 of shape (n, 5), every index inside its factor's grid."""
    array = np.asarray(factors)
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer array of shape (n, {len(FACTOR_SIZES)}) (indices of "
            f"{', '.join(FACTOR_NAMES)}), got dtype {array.dtype}"
        )
    if array.ndim != 2 or array.shape[1] != len(FACTOR_SIZES):
        raise ValueError(
            f"{name} must have shape (n, {len(FACTOR_SIZES)}) (indices of "
            f"{', '.join(FACTOR_NAMES)}), got shape {array.shape}"
        )
    for i, (factor, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES, strict=True)):
        bad = (array[:, i] < 0) | (array[:, i] >= size)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name}[:, {i}] ({factor}) must be in [0, {size}), got {array[row, i]} in "
                f"row {row}"
            )
    return array.astype(np.int64)


@jax.jit
def _draw(values: jax.Array) -> jax.Array:
    """uint8 images of shape (b, 64, 64): 1 where the pixel's centre is inside the sprite."""
    shape, scale, orientation, pos_x, pos_y = (values[:, i, None, None] for i in range(5))
    centres = jnp.arange(IMAGE_SIZE, dtype=jnp.float32) + 0.5
    dx = centres[None, None, :] - (POSITION_MARGIN + POSITION_SPAN * pos_x)
    dy = centres[None, :, None] - (POSITION_MARGIN + POSITION_SPAN * pos_y)
    cos, sin = jnp.cos(orientation), jnp.sin(orientation)
    size = HALF_WIDTH * scale
    # The pixel centre in the sprite's own frame (the sprite turned back by its orientation),
    # in units of half the square's side: y down.
    u = (cos * dx + sin * dy) / size
    v = (cos * dy - sin * dx) / size
    square = jnp.maximum(jnp.abs(u), jnp.abs(v)) <= 1.0
    ellipse = u * u + (v / ELLIPSE_ASPECT) ** 2 <= 1.0
    x = HEART_HALF_WIDTH * u
    y = HEART_CENTROID_Y - HEART_HALF_WIDTH * v  # y up, from the curve's origin
    r = x * x + y * y - 1.0
    heart = r * r * r <= x * x * y * y * y
    inside = jnp.where(shape == 1.0, square, jnp.where(shape == 2.0, ellipse, heart))
    return inside.astype(jnp.uint8)


def render_values(values: Any) -> np.ndarray:
    """Draws sprites of any factor values, on or off the grid (see the module's docstring).

    Rendered by one compiled program over chunks of at most 8,192 images, so memory stays
    bounded whatever ``n``.

    Args:
        values: array of shape (n, 5) of (shape code 1/2/3, scale, orientation in radians,
            posX, posY), as :func:`factor_values` returns; scales must be > 0, the other values
            finite (positions outside [0, 1] move the sprite towards or past the frame).

    Returns:
        uint8 array of shape (n, 64, 64, 1) of 0 and 1.
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[1] != len(FACTOR_SIZES):
        raise ValueError(
            f"values must have shape (n, 5) (shape code, scale, orientation, posX, posY), got "
            f"shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("values must be finite, got NaN or infinite entries")
    codes = values[:, 0]
    if not np.isin(codes, FACTOR_VALUES[0]).all():
        raise ValueError(
            "values[:, 0] (shape) must be 1 (square), 2 (ellipse) or 3 (heart), DeepMind's "
            f"codes, got {codes[~np.isin(codes, FACTOR_VALUES[0])][0]}"
        )
    if (values[:, 1] <= 0).any():
        raise ValueError(f"values[:, 1] (scale) must be > 0, got {values[:, 1].min()}")
    images = np.empty((len(values), IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8)
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK].astype(np.float32)
        rows = len(chunk)
        padded = min(_CHUNK, max(_SMALLEST_CALL, 1 << (rows - 1).bit_length()))
        chunk = np.pad(chunk, ((0, padded - rows), (0, 0)), mode="edge")
        images[start : start + rows, ..., 0] = np.asarray(_draw(chunk))[:rows]
    return images


class DSprites:
    """dSprites as a ground-truth data source, with disentanglement_lib's interface.

    ``factors_num_values``, ``num_factors``, ``observation_shape``, ``sample_factors``,
    ``sample_observations_from_factors`` and ``sample`` are disentanglement_lib's
    ``GroundTruthData`` methods with a JAX key in place of its ``random_state`` (first, as
    everywhere in this library); the draws are made on the host by a NumPy generator seeded
    with the key's data, the same key giving the same draws. Images are rendered on demand (see
    the module's docstring for how), or read from DeepMind's file or array.

    Args:
        variant: ``"plain"`` (binary sprites, one channel), ``"color"`` or ``"noisy"``
            (disentanglement_lib's ``ColorDSprites`` and ``NoisyDSprites``, three channels).
        npz: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``, read with
            :func:`read_npz` (its ``imgs``, 3 GB in memory, and ``latents_values``, checked
            against the grid); images then come from it.
        images: instead of ``npz``, DeepMind's images as any array of shape (737280, 64, 64)
            that takes an increasing integer array as index (rows are asked for that way, as
            h5py requires): a NumPy array, ``np.load`` of the ``imgs.npy`` unpacked from the npz
            with ``mmap_mode="r"`` (nothing read until asked), or the ``imgs`` dataset of their
            HDF5 file. Its rows must follow the official order; values are checked to be 0 or 1
            as rows are read.

    Example:
        >>> data = DSprites()
        >>> factors, images = data.sample(jax.random.key(0), 16)  # (16, 5), (16, 64, 64, 1)
    """

    factor_names = FACTOR_NAMES
    factors_num_values = FACTOR_SIZES
    num_factors = len(FACTOR_SIZES)
    num_images = NUM_IMAGES

    def __init__(self, variant: str = "plain", *, npz: Any = None, images: Any = None) -> None:
        self.variant = validation.check_choice("variant", variant, VARIANTS)
        if npz is not None and images is not None:
            raise ValueError("pass npz (DeepMind's file) or images (its array), not both")
        self.source = "rendered"
        self._images = None
        if npz is not None:
            self._images = _official_images(npz)
            self.source = os.fspath(npz)
        elif images is not None:
            shape = tuple(getattr(images, "shape", ()))
            if shape != _OFFICIAL_ROWS:
                raise ValueError(
                    f"images must have DeepMind's shape {_OFFICIAL_ROWS}, got "
                    f"{shape or type(images).__name__}"
                )
            self._images = images
            self.source = "images"

    @classmethod
    def from_npz(cls, path: str | os.PathLike, variant: str = "plain") -> DSprites:
        """The data source of DeepMind's file: ``DSprites(variant, npz=path)``."""
        return cls(variant, npz=path)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        """(64, 64, 1) for ``"plain"``, (64, 64, 3) for the colour and noise variants."""
        return (IMAGE_SIZE, IMAGE_SIZE, 1 if self.variant == "plain" else 3)

    def __len__(self) -> int:
        return NUM_IMAGES

    def __repr__(self) -> str:
        return f"DSprites(variant={self.variant!r}, source={self.source!r})"

    factor_values = staticmethod(factor_values)
    factors_to_index = staticmethod(factors_to_index)
    index_to_factors = staticmethod(index_to_factors)

    def sample_factors(self, key: jax.Array, n: int) -> np.ndarray:
        """Factors drawn uniformly and independently (every image equally likely).

        Args:
            key: a ``jax.random`` key.
            n: how many, >= 1.

        Returns:
            int64 array of shape (n, 5).
        """
        generator = _generator(key)
        n = validation.check_int("n", n, 1)
        return generator.integers(0, FACTOR_SIZES, size=(n, len(FACTOR_SIZES)), dtype=np.int64)

    def render(self, factors: Any) -> np.ndarray:
        """The binary sprites of ``factors``: drawn, or read from DeepMind's images.

        Args:
            factors: int array of shape (n, 5).

        Returns:
            uint8 array of shape (n, 64, 64, 1) of 0 and 1 (no colour or noise).
        """
        factors = _check_factors(factors)
        if self._images is None:
            return render_values(factor_values(factors))
        return self._read(factors_to_index(factors))

    def _read(self, index: np.ndarray) -> np.ndarray:
        """Rows of the stored images, read in increasing order (as h5py requires)."""
        rows, inverse = np.unique(index, return_inverse=True)
        block = np.asarray(self._images[rows])
        if block.size and (block.min() < 0 or block.max() > 1):
            raise ValueError(
                f"the dSprites images of {self.source!r} must be 0 or 1, got values in "
                f"[{block.min()}, {block.max()}]"
            )
        return block.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)[inverse]

    def sample_observations_from_factors(
        self, factors: Any, key: jax.Array | None = None
    ) -> np.ndarray:
        """Images of ``factors``, with the variant's colour or noise drawn from ``key``.

        Args:
            factors: int array of shape (n, 5).
            key: a ``jax.random`` key; the ``"plain"`` variant draws nothing and also takes
                ``None``.

        Returns:
            float32 array of shape (n, 64, 64, channels) in [0, 1] (:attr:`observation_shape`).
        """
        generator = None if self.variant == "plain" and key is None else _generator(key)
        sprites = self.render(factors).astype(np.float32)
        if self.variant == "plain":
            return sprites
        n = len(sprites)
        if self.variant == "color":
            colour = generator.uniform(0.5, 1.0, (n, 1, 1, 3)).astype(np.float32)
            return sprites * colour
        noise = generator.random((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
        return np.minimum(sprites + noise, 1.0)

    def sample(self, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Factors and their images.

        Args:
            key: a ``jax.random`` key (split into the factors' key and the images').
            n: how many, >= 1.

        Returns:
            ``(factors, observations)``: int64 of shape (n, 5) and float32 of shape
            (n, 64, 64, channels) in [0, 1].
        """
        factor_key, observation_key = jax.random.split(validation.check_key("key", key))
        factors = self.sample_factors(factor_key, n)
        return factors, self.sample_observations_from_factors(factors, observation_key)

    def sample_observations(self, key: jax.Array, n: int) -> np.ndarray:
        """The images of :meth:`sample`: float32 of shape (n, 64, 64, channels)."""
        return self.sample(key, n)[1]

    def batches(
        self, batch_size: int = 10_000, *, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The grid's images in DeepMind's order, a batch at a time (never all at once).

        Args:
            batch_size: images per batch, >= 1 (the last batch may be smaller).
            start: the first index.
            stop: one past the last index (default: 737280, the whole grid).

        Yields:
            ``(factors, images)``: int64 of shape (b, 5) and uint8 of shape (b, 64, 64, 1), the
            binary sprites of :meth:`render`.
        """
        batch_size = validation.check_int("batch_size", batch_size, 1)
        start = validation.check_int("start", start, 0)
        stop = NUM_IMAGES if stop is None else validation.check_int("stop", stop, start)
        if start > NUM_IMAGES or stop > NUM_IMAGES:
            raise ValueError(
                f"start and stop must be <= {NUM_IMAGES}, got start={start}, stop={stop}"
            )
        return self._batches(batch_size, start, stop)

    def _batches(
        self, batch_size: int, start: int, stop: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for first in range(start, stop, batch_size):
            factors = index_to_factors(np.arange(first, min(first + batch_size, stop)))
            yield factors, self.render(factors)


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``imgs`` and ``latents_values`` of a dSprites ``.npz``, never unpickling.

    DeepMind's file also holds a pickled ``metadata``; ``np.load(path, allow_pickle=False)``
    reads an archive's arrays one at a time when asked, so only the two arrays read here are
    ever read. The values' agreement with the grid is :class:`DSprites`'s check.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``(imgs, latents_values)``: uint8 of shape (N, 64, 64) and float64 of shape (N, 6).

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: naming the file, when it is not a readable ``.npz`` archive, lacks one of
            the arrays, or holds arrays of other shapes or types.
    """
    path = check_regular_file(path, "dSprites file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read the dSprites file {path!r}: {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"the dSprites file {path!r} holds one array, not an .npz archive of imgs and "
            f"latents_values (DeepMind's {OFFICIAL_FILENAME})"
        )
    with archive:
        missing = [k for k in ("imgs", "latents_values") if k not in archive.files]
        if missing:
            raise ValueError(
                f"the dSprites file {path!r} has no {' or '.join(missing)} (its arrays: "
                f"{', '.join(archive.files) or 'none'}); expected DeepMind's {OFFICIAL_FILENAME}"
            )
        try:
            imgs = archive["imgs"]
            latents = archive["latents_values"]
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
            raise ValueError(f"cannot read the dSprites file {path!r}: {error}") from error
    if imgs.ndim != 3 or imgs.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or imgs.dtype.kind not in "bu":
        raise ValueError(
            f"imgs of the dSprites file {path!r} must be uint8 of shape (N, 64, 64), got "
            f"{imgs.dtype} of shape {imgs.shape}"
        )
    if latents.shape != (len(imgs), 6) or latents.dtype.kind != "f":
        raise ValueError(
            f"latents_values of the dSprites file {path!r} must be floats of shape "
            f"({len(imgs)}, 6), got {latents.dtype} of shape {latents.shape}"
        )
    return imgs.astype(np.uint8, copy=False), latents.astype(np.float64, copy=False)


def _official_images(path: str | os.PathLike) -> np.ndarray:
    """DeepMind's ``imgs``, after checking that the file holds the whole grid in its order."""
    imgs, latents = read_npz(path)
    path = os.fspath(path)
    rows = min(len(latents), NUM_IMAGES)
    expected = np.concatenate(
        [np.ones((rows, 1)), factor_values(index_to_factors(np.arange(rows)))], axis=1
    )
    wrong = ~np.isclose(latents[:rows], expected, rtol=0.0, atol=1e-6).all(axis=1)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ValueError(
            f"latents_values of the dSprites file {path!r} do not follow DeepMind's grid and "
            f"order: row {row} is {latents[row].tolist()}, expected {expected[row].tolist()}"
        )
    if len(imgs) != NUM_IMAGES:
        raise ValueError(
            f"the dSprites file {path!r} holds {len(imgs)} images; DeepMind's holds all "
            f"{NUM_IMAGES} of the grid"
        )
    return imgs


def load_dsprites(
    n: int = DEFAULT_SUBSET_SIZE,
    *,
    seed: int = DEFAULT_SUBSET_SEED,
    npz: str | os.PathLike | None = None,
    variant: str = "plain",
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random subset of dSprites: ``n`` distinct images of the grid.

    The named data set ``"dsprites"`` is this with its defaults (20,000 images, seed 0,
    rendered; 328 MB as float32).

    Args:
        n: how many images, in [1, 737280].
        seed: the seed of the subset (and of the variant's nuisance).
        npz: DeepMind's file, whose images to use instead of rendered ones.
        variant: one of :data:`VARIANTS`.

    Returns:
        ``(images, factors)``: float32 of shape (n, 64, 64, channels) in [0, 1] and int64 of
        shape (n, 5), in increasing order of their index in the grid.
    """
    n = validation.check_int("n", n, 1)
    if n > NUM_IMAGES:
        raise ValueError(f"n must be <= {NUM_IMAGES} (the whole grid), got n={n}")
    data = DSprites(variant, npz=npz)
    key = jax.random.key(validation.check_int("seed", seed, 0))
    subset_key, nuisance_key = jax.random.split(key)
    index = np.sort(_generator(subset_key).choice(NUM_IMAGES, n, replace=False))
    factors = index_to_factors(index.astype(np.int64))
    return data.sample_observations_from_factors(factors, nuisance_key), factors
