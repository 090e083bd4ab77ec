"""Image figures: files exist, open with Pillow, have the documented pixel sizes and show the
images."""

import numpy as np
import pytest
from PIL import Image

from latent_jax import plots


def _open(path):
    with Image.open(path) as image:
        return image.size, np.asarray(image.convert("L"), np.float64)


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(100, 25, 25, 1))


def test_image_grid_preview_size(tmp_path, faces):
    path = plots.image_grid(faces, tmp_path / "grid.png", 10, 10, title="Preview")
    assert path == str(tmp_path / "grid.png")
    size, _ = _open(path)
    assert size == (1000, 1050)  # 10 cells of 1 inch, plus 0.5 inch of title, at 100 dpi
    size, _ = _open(plots.image_grid(faces[:7], tmp_path / "partial.png", 2, 5))
    assert size == (500, 200)


def test_image_grid_keeps_the_image_aspect(tmp_path):
    tall = np.zeros((4, 112, 92))
    size, _ = _open(plots.image_grid(tall, tmp_path / "tall.png", 2, 2, cell_inches=0.92))
    assert size == (184, 224)


def test_image_grid_draws_the_pixels(tmp_path):
    black = np.zeros((1, 8, 8))
    _, pixels = _open(plots.image_grid(black, tmp_path / "black.png", 1, 1, vmin=0, vmax=1))
    assert pixels.mean() < 20
    white = np.ones((1, 8, 8))
    _, pixels = _open(plots.image_grid(white, tmp_path / "white.png", 1, 1, vmin=0, vmax=1))
    assert pixels.mean() > 235
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)[None]
    _, pixels = _open(plots.image_grid(checker, tmp_path / "checker.png", 1, 1))
    assert 100 < pixels.mean() < 155


def test_grey_cells_are_autoscaled_one_by_one(tmp_path):
    constant = np.full((10, 10), 5.0)
    ramp = np.tile(np.linspace(-2.0, 7.0, 10), (10, 1))  # columns from -2 to 7
    path = plots.image_grid(np.stack([constant, ramp]), tmp_path / "ramp.png", 1, 2)
    size, pixels = _open(path)
    assert size == (200, 100)  # 2 by 1 inches at 100 dpi
    middle = pixels[50]
    assert np.all(pixels[:99, :99] == 0)  # a constant image is drawn at the low end: black
    assert np.all(middle[99:101] == 255)  # the gap between the cells is background
    cell = middle[101:]
    assert cell[0] == 0 and cell[-1] == 255  # the ramp's minimum black, its maximum white
    assert np.all(np.diff(cell) >= 0) and len(np.unique(cell)) == 10


def test_blank_cells_stay_background(tmp_path):
    black = np.zeros((3, 5, 5))
    _, pixels = _open(plots.image_grid(black, tmp_path / "blank.png", 2, 2, vmin=0, vmax=1))
    assert pixels[:95, :95].max() == 0 and pixels[105:, :95].max() == 0
    assert pixels[105:, 105:].min() == 255  # the fourth cell has no image


def test_image_grid_draws_rgb(tmp_path):
    red = np.zeros((2, 6, 6, 3))
    red[..., 0] = 255  # 8-bit values are read as 0..255
    path = plots.image_grid(red, tmp_path / "rgb.png", 1, 2)
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), np.float64)
    assert rgb[..., 0].mean() > 230 and rgb[..., 1].mean() < 30


def test_reconstruction_pairs(tmp_path):
    originals = np.random.default_rng(1).uniform(size=(12, 8, 8))
    path = plots.reconstruction_pairs(originals, originals * 0.5, tmp_path / "pairs.png", n=10)
    size, _ = _open(path)
    assert size == (1260, 290)  # 10 columns of 1.2 inch plus 0.6 for labels; 2 rows plus title
    with pytest.raises(ValueError, match="originals and reconstructions must have one shape"):
        plots.reconstruction_pairs(originals, originals[:, :4], tmp_path / "bad.png")


def test_image_strip_is_the_seeds_two_by_five(tmp_path, faces):
    captions = [f"t={t:.2f}" for t in np.linspace(0, 1, 10)]
    path = plots.image_strip(faces[:10], tmp_path / "strip.png", "Interpolation", captions=captions)
    size, _ = _open(path)
    assert size == (1200, 600)
    size, _ = _open(plots.image_strip(faces[:3], tmp_path / "three.png", nrows=1))
    assert size == (720, 300)
    with pytest.raises(ValueError, match="captions must have one entry per image"):
        plots.image_strip(faces[:3], tmp_path / "bad.png", captions=["a"])


def test_traversal_grid(tmp_path):
    grid = np.random.default_rng(2).normal(size=(3, 7, 8, 8, 1))
    values = np.linspace(-3, 3, 7)
    path = plots.traversal_grid(grid, values, tmp_path / "traversal.png", dims=[0, 4, 5])
    size, _ = _open(path)
    assert size == (760, 380)  # 7 + 0.6 inches by 3 + 0.5 (title) + 0.3 (values)
    with pytest.raises(ValueError, match=r"values must have shape \(7,\)"):
        plots.traversal_grid(grid, values[:3], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="dims must have one entry per row"):
        plots.traversal_grid(grid, values, tmp_path / "bad.png", dims=[0])


def test_bad_image_shapes_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"images must have shape .* got \(5, 5\)"):
        plots.image_grid(np.zeros((5, 5)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"images must have shape .* got \(2, 5, 5, 2\)"):
        plots.image_strip(np.zeros((2, 5, 5, 2)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"grid must have shape"):
        plots.traversal_grid(np.zeros((5, 5, 5)), [0.0] * 5, tmp_path / "bad.png")
