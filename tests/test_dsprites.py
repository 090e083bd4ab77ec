"""dSprites: DeepMind's grid and order, the drawn sprites' geometry (each factor matters, area
grows with scale², the shapes' symmetries, a centre of mass linear in the position), keyed
sampling, batches that never hold the whole grid, DeepMind's file read without unpickling, the
colour and noise variants, and the named data set."""

import itertools

import jax
import numpy as np
import pytest

import latent_jax
from latent_jax.data import dsprites
from latent_jax.data import images as image_data

SIZES = (3, 6, 40, 32, 32)
# The image's centre (32, 32) px as a position: rot90 maps the pixel grid onto itself about it.
CENTRE = (32 - dsprites.POSITION_MARGIN) / dsprites.POSITION_SPAN
# Areas of the three shapes at scale 1, in px², from their definitions: a square of side 20, an
# ellipse of half-axes 10 and 5, and the heart (x² + y² - 1)³ <= x² y³ (area 3.661931, by
# integrating its width over y) scaled by 10 / 1.139028 px per unit.
AREAS = (400.0, np.pi * 50.0, 3.661931 * (10.0 / 1.139028) ** 2)


def _grid(**fixed):
    """Every factor row of the grid with some factors fixed (name=index or a list of them)."""
    axes = [
        np.atleast_1d(fixed.get(name, range(size)))
        for name, size in zip(dsprites.FACTOR_NAMES, SIZES, strict=True)
    ]
    return np.array(list(itertools.product(*axes)), np.int64)


def _pixels_off(a, b):
    """How many pixels differ, per image."""
    return (a != b).reshape(len(a), -1).sum(axis=1)


def test_the_grid_and_interface_follow_deepmind_and_disentanglement_lib():
    data = latent_jax.DSprites()
    assert data.factors_num_values == SIZES
    assert data.num_factors == 5 and len(data) == 737_280
    assert data.observation_shape == (64, 64, 1)
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    # Values printed from the metadata of DeepMind's file (their reloading notebook).
    scale, orientation, pos_x = (dsprites.FACTOR_VALUES[i] for i in (1, 2, 3))
    np.testing.assert_allclose(scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], atol=1e-12)
    np.testing.assert_allclose(orientation[[1, 13, 39]], [0.16110732, 2.0943951, 6.28318531])
    np.testing.assert_allclose(pos_x[[1, 15, 31]], [0.03225806, 0.48387097, 1.0], atol=1e-8)
    values = data.factor_values(np.array([[2, 5, 39, 0, 31]]))
    np.testing.assert_allclose(values, [[3.0, 1.0, 2 * np.pi, 0.0, 1.0]])


def test_index_order_is_deepmind_s_and_round_trips():
    factors = latent_jax.DSprites().sample_factors(jax.random.key(0), 500)
    index = dsprites.factors_to_index(factors)
    np.testing.assert_array_equal(index, np.ravel_multi_index(tuple(factors.T), SIZES))
    np.testing.assert_array_equal(dsprites.index_to_factors(index), factors)
    every = np.arange(737_280)
    np.testing.assert_array_equal(
        dsprites.factors_to_index(dsprites.index_to_factors(every)), every
    )
    # The notebook's examples: index 1 moves posY, index 32 posX, index 32 * 32 orientation.
    np.testing.assert_array_equal(
        dsprites.index_to_factors(np.array([0, 1, 32, 1024])),
        [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]],
    )


def test_each_factor_changes_the_image():
    data = latent_jax.DSprites()
    factors = data.sample_factors(jax.random.key(1), 60)
    images = data.render(factors)
    for i, size in enumerate(SIZES):
        moved = factors.copy()
        moved[:, i] = np.where(factors[:, i] + 1 < size, factors[:, i] + 1, factors[:, i] - 1)
        assert (_pixels_off(images, data.render(moved)) > 0).all(), dsprites.FACTOR_NAMES[i]


@pytest.mark.numerics
def test_orientation_0_and_2pi_draw_the_same_sprite():
    data = latent_jax.DSprites()
    start = _grid(orientation=0, posX=[0, 13, 31], posY=[0, 20, 31])
    end = start.copy()
    end[:, 2] = 39
    # The same sprite up to float rounding: cos and sin of 2π are not exactly 1 and 0, so a
    # pixel whose centre lies within ~1e-6 px of the outline may fall either way.
    assert _pixels_off(data.render(start), data.render(end)).max() <= 1


def test_area_grows_with_the_square_of_the_scale():
    data = latent_jax.DSprites()
    for shape in range(3):
        factors = _grid(shape=shape, orientation=7)
        mean_area = data.render(factors).reshape(6, -1).sum(axis=1) / (32 * 32)
        expected = AREAS[shape] * dsprites.FACTOR_VALUES[1] ** 2
        # One image's pixel count is off its area by at most the pixels its outline crosses
        # (~40 for the 100 px² square at scale 0.5). Over the 32 × 32 positions, whose
        # sub-pixel offsets step by 1/31 px on each axis, the count's mean is a Riemann sum of
        # its average over offsets, which is the area exactly; measured within 0.3%.
        np.testing.assert_allclose(mean_area, expected, rtol=0.01)
        np.testing.assert_allclose(mean_area / mean_area[-1], dsprites.FACTOR_VALUES[1] ** 2, 0.01)


@pytest.mark.numerics
def test_the_square_repeats_every_quarter_turn_the_ellipse_every_half_turn_not_the_heart():
    angles = np.linspace(0.0, 2 * np.pi, 13)

    def draw(shape, turn):
        values = [[shape, 1.0, angle + turn, CENTRE, CENTRE] for angle in angles]
        return dsprites.render_values(np.array(values))[..., 0]

    # Pixels whose centre lies within float rounding of the outline may fall either way when
    # the angle differs by a rounded π/2: at most one per image (none measured).
    for shape in (1, 2, 3):
        image, quarter, half = draw(shape, 0.0), draw(shape, np.pi / 2), draw(shape, np.pi)
        # Turning by θ is turning the image clockwise about its centre (row 0 on top).
        assert _pixels_off(np.rot90(image, k=-1, axes=(1, 2)), quarter).max() <= 1
        area = image.sum(axis=(1, 2))
        if shape == 1:
            assert _pixels_off(image, quarter).max() <= 1
        if shape == 2:
            assert _pixels_off(image, half).max() <= 1
            assert (_pixels_off(image, quarter) > 0.5 * area).all()
        if shape == 3:
            assert (_pixels_off(image, half) > 0.2 * area).all()


def test_the_centre_of_mass_moves_linearly_with_the_position():
    data = latent_jax.DSprites()
    centres = np.arange(64) + 0.5
    positions = dsprites.FACTOR_VALUES[3]
    for shape, scale, orientation in itertools.product(range(3), (0, 5), (0, 7, 23)):
        fixed = {"shape": shape, "scale": scale, "orientation": orientation}
        along_x = data.render(_grid(**fixed, posY=9))[..., 0]
        along_y = data.render(_grid(**fixed, posX=20))[..., 0]
        for images, axis in ((along_x, 1), (along_y, 2)):
            mass = images.sum(axis=(1, 2))
            centre = (images.sum(axis=axis) * centres).sum(axis=1) / mass
            slope, intercept = np.polyfit(positions, centre, 1)
            residual = np.abs(centre - (slope * positions + intercept))
            # Each sprite turns about its centroid, placed at 14.25 + 35.5 pos px (measured
            # within 0.07 px). Pixels light where their centres fall inside, so an edge parallel
            # to the pixel grid is rounded to it: the square at orientation 0 is a block of
            # pixels whose centre is its centroid rounded to the pixel grid, off by up to half a
            # pixel (0.46 measured). Turned edges cross pixels at every offset, and the errors
            # average out (measured <= 0.18 px).
            assert abs(slope - 35.5) < 0.2 and abs(intercept - 14.25) < 0.1
            assert residual.max() < (0.5 if orientation == 0 else 0.3)


@pytest.mark.numerics
def test_every_sprite_stays_inside_the_frame():
    # At scale 1, every shape and orientation, in the four corners of the positions: moved
    # 10 px towards the centre, the sprite's pixels move with it and none appear, so the frame
    # cut none of them off.
    values = dsprites.factor_values(_grid(scale=5, posX=[0, 31], posY=[0, 31]))
    shift = np.where(values[:, 3:] == 0.0, 10, -10)  # px, towards the centre
    moved = values.copy()
    moved[:, 3:] += shift / dsprites.POSITION_SPAN
    images = dsprites.render_values(values)[..., 0]
    inward = dsprites.render_values(moved)[..., 0]
    for image, image_moved, (dx, dy) in zip(images, inward, shift, strict=True):
        # A pixel whose centre lies within float rounding of the outline may fall either way.
        assert (np.roll(image, (dy, dx), axis=(0, 1)) != image_moved).sum() <= 1


def test_sampling_is_keyed():
    data = latent_jax.DSprites()
    factors, images = data.sample(jax.random.key(3), 40)
    again_factors, again_images = data.sample(jax.random.key(3), 40)
    np.testing.assert_array_equal(factors, again_factors)
    np.testing.assert_array_equal(images, again_images)
    other, _ = data.sample(jax.random.key(4), 40)
    assert (other != factors).any()
    assert factors.dtype == np.int64 and images.dtype == np.float32
    assert images.shape == (40, 64, 64, 1) and set(np.unique(images)) <= {0.0, 1.0}
    np.testing.assert_array_equal(images, data.render(factors))
    many = data.sample_factors(jax.random.key(5), 4000)
    for i, size in enumerate(SIZES):
        np.testing.assert_array_equal(np.unique(many[:, i]), np.arange(size))
    np.testing.assert_array_equal(data.sample_observations(jax.random.key(3), 40), images)


def test_batches_render_a_batch_at_a_time(monkeypatch):
    data = latent_jax.DSprites()
    expected = data.render(dsprites.index_to_factors(np.arange(1000, 1250)))
    drawn = []
    real = dsprites.render_values

    def counting(values):
        drawn.append(len(values))
        return real(values)

    monkeypatch.setattr(dsprites, "render_values", counting)
    got = list(data.batches(100, start=1000, stop=1250))
    assert drawn == [100, 100, 50]
    rows = np.stack(np.unravel_index(np.arange(1000, 1250), SIZES), axis=1)
    np.testing.assert_array_equal(np.concatenate([f for f, _ in got]), rows)
    np.testing.assert_array_equal(np.concatenate([i for _, i in got]), expected)
    drawn.clear()
    whole = data.batches(64)  # the whole grid, lazily
    first = [images for _, images in itertools.islice(whole, 2)]
    assert drawn == [64, 64] and all(i.shape == (64, 64, 64, 1) for i in first)


def test_large_requests_are_drawn_in_bounded_chunks(monkeypatch):
    calls = []
    real = dsprites._draw

    def counting(values):
        calls.append(values.shape[0])
        return real(values)

    monkeypatch.setattr(dsprites, "_draw", counting)
    factors = latent_jax.DSprites().sample_factors(jax.random.key(6), 8192 + 5)
    images = dsprites.render_values(dsprites.factor_values(factors))
    assert calls == [8192, 64] and images.shape == (8197, 64, 64, 1)


def _write_fake_npz(path, n=10, latents=None, **extra):
    """A small file shaped like DeepMind's, with its pickled metadata."""
    rows = np.arange(n)
    if latents is None:
        latents = np.concatenate(
            [np.ones((n, 1)), dsprites.factor_values(dsprites.index_to_factors(rows))], axis=1
        )
    arrays = {
        "imgs": (np.arange(n * 64 * 64).reshape(n, 64, 64) % 2).astype(np.uint8),
        "latents_values": latents,
        "latents_classes": np.concatenate(
            [np.zeros((n, 1), np.int64), dsprites.index_to_factors(rows)], 1
        ),
        "metadata": np.array({"latents_sizes": np.array((1, *SIZES))}, dtype=object),
    }
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_deepmind_s_file_is_read_without_unpickling(tmp_path):
    path = tmp_path / dsprites.OFFICIAL_FILENAME
    arrays = _write_fake_npz(path)
    with np.load(path, allow_pickle=False) as archive, pytest.raises(ValueError, match="pickle"):
        archive["metadata"]  # the fake file really holds a pickle, which must stay unread
    imgs, latents = dsprites.read_npz(path)
    np.testing.assert_array_equal(imgs, arrays["imgs"])
    np.testing.assert_array_equal(latents, arrays["latents_values"])
    # A file in the grid's order but not the whole grid is named and refused.
    with pytest.raises(ValueError, match=rf"{path.name}.*holds 10 images.*737280"):
        latent_jax.DSprites(npz=path)
    wrong = arrays["latents_values"].copy()
    wrong[3, 3] = 1.0
    _write_fake_npz(path, latents=wrong)
    with pytest.raises(ValueError, match=r"do not follow DeepMind's grid.*row 3"):
        latent_jax.DSprites.from_npz(path)


def test_unreadable_or_incomplete_files_are_named(tmp_path):
    missing = tmp_path / "none.npz"
    with pytest.raises(FileNotFoundError, match="none.npz"):
        dsprites.read_npz(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match="cannot read the dSprites file.*garbage.npz"):
        dsprites.read_npz(garbage)
    no_imgs = tmp_path / "no_imgs.npz"
    _write_fake_npz(no_imgs, imgs=None)
    with pytest.raises(ValueError, match=r"no_imgs.npz' has no imgs \(its arrays: "):
        dsprites.read_npz(no_imgs)
    one_array = tmp_path / "one.npy"
    np.save(one_array, np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="one.npy' holds one array, not an .npz"):
        dsprites.read_npz(one_array)
    bad_shape = tmp_path / "small.npz"
    _write_fake_npz(bad_shape, imgs=np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"imgs of the dSprites file .*small.npz"):
        dsprites.read_npz(bad_shape)


class _IndexImages:
    """DeepMind's images as a stand-in: image ``i`` writes ``i`` in binary along its top row.
    Like an h5py dataset it takes only increasing, distinct rows."""

    shape = (737_280, 64, 64)

    def __init__(self, top=1):
        self.top = top

    def __getitem__(self, rows):
        assert (np.diff(rows) > 0).all()
        images = np.zeros((len(rows), 64, 64), np.uint8)
        images[:, 0, :20] = (rows[:, None] >> np.arange(20)) & 1
        images[:, 1, 0] = self.top
        return images


def test_official_images_are_read_at_the_index_of_their_factors():
    data = latent_jax.DSprites(images=_IndexImages())
    sampled, observed = data.sample(jax.random.key(7), 50)
    factors = np.concatenate([sampled, sampled[:3]])  # repeated rows too
    for images in (observed, data.sample_observations_from_factors(factors, None)):
        read = (images[:, 0, :20, 0].astype(np.int64) << np.arange(20)).sum(axis=1)
        np.testing.assert_array_equal(read, dsprites.factors_to_index(factors[: len(images)]))
        assert images.dtype == np.float32 and images[:, 1, 0, 0].min() == 1.0
    with pytest.raises(ValueError, match=r"must be 0 or 1, got values in \[0, 255\]"):
        latent_jax.DSprites(images=_IndexImages(top=255)).render(factors)
    with pytest.raises(ValueError, match=r"DeepMind's shape \(737280, 64, 64\)"):
        latent_jax.DSprites(images=np.zeros((5, 64, 64), np.uint8))


def test_the_colour_and_noise_variants():
    factors = latent_jax.DSprites().sample_factors(jax.random.key(8), 30)
    sprite = latent_jax.DSprites().render(factors)[..., 0].astype(bool)
    colour = latent_jax.DSprites("color")
    assert colour.observation_shape == (64, 64, 3)
    images = colour.sample_observations_from_factors(factors, jax.random.key(9))
    assert images.shape == (30, 64, 64, 3) and images.dtype == np.float32
    assert images[~sprite].max() == 0.0  # a black background
    on = images[sprite]  # (pixels, 3)
    assert on.min() >= 0.5 and on.max() <= 1.0
    per_image = images.max(axis=(1, 2))  # one colour per image
    np.testing.assert_array_equal(images, sprite[..., None] * per_image[:, None, None, :])
    assert len(np.unique(per_image[:, 0])) == 30
    noisy = latent_jax.DSprites("noisy")
    images = noisy.sample_observations_from_factors(factors, jax.random.key(9))
    assert images.shape == (30, 64, 64, 3) and images.min() >= 0.0 and images.max() <= 1.0
    assert (images[sprite] == 1.0).all()
    background = images[~sprite]
    assert background.max() < 1.0 and abs(background.mean() - 0.5) < 0.01  # uniform noise
    again = noisy.sample_observations_from_factors(factors, jax.random.key(9))
    np.testing.assert_array_equal(images, again)
    other = noisy.sample_observations_from_factors(factors, jax.random.key(10))
    assert (other != images).mean() > 0.5
    with pytest.raises(TypeError, match="key must be a jax.random.key"):
        noisy.sample_observations_from_factors(factors, None)


def test_bad_arguments_are_named():
    data = latent_jax.DSprites()
    with pytest.raises(TypeError, match=r"factors must be an integer array of shape \(n, 5\)"):
        data.render(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"factors must have shape \(n, 5\).*\(2, 4\)"):
        data.render(np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match=r"factors\[:, 2\] \(orientation\) must be in \[0, 40\)"):
        data.factors_to_index(np.array([[0, 0, 40, 0, 0]]))
    with pytest.raises(ValueError, match=r"index must be in \[0, 737280\), got 737280"):
        data.index_to_factors(np.array([0, 737_280]))
    with pytest.raises(ValueError, match="variant must be one of"):
        latent_jax.DSprites("scream")
    with pytest.raises(ValueError, match="n must be >= 1"):
        data.sample_factors(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="key must be a jax.random.key"):
        data.sample(0, 3)
    with pytest.raises(ValueError, match=r"values\[:, 0\] \(shape\) must be 1 \(square\)"):
        dsprites.render_values(np.array([[0.0, 1.0, 0.0, 0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"values\[:, 1\] \(scale\) must be > 0"):
        dsprites.render_values(np.array([[1.0, 0.0, 0.0, 0.5, 0.5]]))
    with pytest.raises(ValueError, match="start and stop must be <= 737280"):
        data.batches(10, stop=737_281)
    with pytest.raises(ValueError, match="npz .* or images .*, not both"):
        latent_jax.DSprites(npz="a.npz", images=_IndexImages())
    with pytest.raises(ValueError, match="n must be <= 737280"):
        dsprites.load_dsprites(737_281)


def test_load_dsprites_is_a_fixed_subset_of_distinct_images():
    images, factors = dsprites.load_dsprites(300, seed=0)
    assert images.shape == (300, 64, 64, 1) and images.dtype == np.float32
    index = dsprites.factors_to_index(factors)
    assert (np.diff(index) > 0).all()  # distinct, in the grid's order
    np.testing.assert_array_equal(images, latent_jax.DSprites().render(factors))
    again, _ = dsprites.load_dsprites(300, seed=0)
    np.testing.assert_array_equal(again, images)
    _, other = dsprites.load_dsprites(300, seed=1)
    assert len(np.intersect1d(dsprites.factors_to_index(other), index)) < 30
    noisy, _ = dsprites.load_dsprites(5, variant="noisy")
    assert noisy.shape == (5, 64, 64, 3)


def test_dsprites_is_a_named_image_data_set(tmp_path, monkeypatch):
    assert "dsprites" in image_data.DATASET_NAMES and "dsprites" in image_data.DATASET_TITLES
    calls = []

    def fewer(**kwargs):  # the default subset's 20,000 images are the slow test's
        calls.append(kwargs)
        calls.append(dsprites.load_dsprites(300, **kwargs))
        return calls[-1]

    monkeypatch.setattr(image_data, "load_dsprites", fewer)
    images, labels, name = image_data.load_images("dsprites")
    assert calls[0] == {"npz": None}  # drawn, the default size and seed
    expected, factors = calls[1]
    assert name == "dsprites"
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, factors[:, 0])
    split = image_data.load_image_dataset("dsprites", normalization="none", random_state=3)
    assert len(split.x_train) == 240 and len(split.x_test) == 60
    # data_dir naming an .npz means DeepMind's file: this small one is refused by name.
    fake = tmp_path / dsprites.OFFICIAL_FILENAME
    _write_fake_npz(fake)
    with pytest.raises(ValueError, match=f"{fake.name}.*holds 10 images"):
        image_data.load_images("dsprites", data_dir=fake)
    assert calls[-1] == {"npz": str(fake)}


@pytest.mark.slow
def test_the_named_data_set_is_20000_fixed_images():
    images, labels, _ = image_data.load_images("dsprites")
    expected, factors = dsprites.load_dsprites(20_000, seed=0)
    assert images.shape == (20_000, 64, 64, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, factors[:, 0])
    np.testing.assert_array_equal(np.bincount(labels, minlength=3) > 6000, [True] * 3)
