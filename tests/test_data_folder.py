"""The folder reader on a synthetic copy of the original BUSI release layout."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from landscape.data import clear_cache, load_images
from landscape.data.folder import is_mask, natural_key
from landscape.errors import LandscapeError

RGB = (200, 100, 50)
RGB_LUMA = 124  # PIL 'L' = (19595 R + 38470 G + 7471 B + 2**15) >> 16


def make_release(root, *, corrupt: bool = False):
    """Class folders like the original release: masks, mixed sizes, RGB/grey/16-bit/JPEG/BMP/TIFF."""
    benign, malignant, normal = (root / c for c in ("benign", "malignant", "normal"))
    for d in (benign, malignant, normal):
        d.mkdir(parents=True)
    Image.new("RGB", (500, 600), RGB).save(benign / "benign (10).png")
    Image.new("L", (300, 200), 77).save(benign / "benign (2).png")
    Image.new("L", (500, 600), 255).save(benign / "benign (2)_mask.png")
    Image.new("L", (500, 600), 255).save(benign / "benign (2)_mask_1.png")
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))  # v = x along the width
    Image.fromarray(ramp).save(malignant / "malignant (1).bmp")
    Image.fromarray(np.full((90, 120), 51400, dtype=np.uint16)).save(malignant / "malignant (3).png")  # 16-bit grey
    Image.new("L", (64, 64), 128).save(normal / "normal (1).jpg", quality=95)
    Image.new("RGBA", (70, 50), RGB + (128,)).save(normal / "normal (2).tif")
    (normal / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("dataset readme")
    (root / ".hidden").mkdir()
    if corrupt:
        (normal / "normal (3).png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    return root


def test_reader_layout_sizes_and_modes(tmp_path):
    images = load_images(make_release(tmp_path / "BUSI_Test"), img_size=32)
    assert images.name == "busi_test" and images.kind == "folder"
    assert images.root == str((tmp_path / "BUSI_Test").resolve())
    assert images.classes == ["benign", "malignant", "normal"]
    assert images.files == ["benign/benign (2).png", "benign/benign (10).png", "malignant/malignant (1).bmp",
                            "malignant/malignant (3).png", "normal/normal (1).jpg", "normal/normal (2).tif"]
    assert images.labels.tolist() == [0, 0, 1, 1, 2, 2] and images.labels.dtype == np.int64
    assert images.skipped == ["benign/benign (2)_mask.png", "benign/benign (2)_mask_1.png"]
    assert images.orig_sizes == [(300, 200), (500, 600), (256, 64), (120, 90), (64, 64), (70, 50)]
    assert images.orig_modes[1] == "RGB" and images.orig_modes[5] == "RGBA"
    assert images.pixels.dtype.is_floating_point is False and tuple(images.pixels.shape) == (6, 1, 32, 32)
    pix = images.pixels[:, 0].numpy().astype(int)
    assert (pix[0] == 77).all()  # grey stays grey
    assert (pix[1] == RGB_LUMA).all()  # RGB -> ITU-R 601 luma
    assert (pix[3] == 200).all()  # 16-bit: 51400 / 257 = 200, not clipped to 255
    assert np.abs(pix[4] - 128).max() <= 1  # JPEG, lossy
    assert (pix[5] == RGB_LUMA).all()  # alpha dropped
    # Bilinear (anti-aliased) shrink of a linear ramp stays linear away from the borders:
    # output column j is centred on input x = (j + 0.5) * 256 / 32 - 0.5.
    centres = (np.arange(32) + 0.5) * 8 - 0.5
    assert np.abs(pix[2, :, 2:-2] - centres[None, 2:-2]).max() <= 1
    assert len(images.file_hashes) == 6 and len(set(images.file_hashes)) == 6
    assert images.thumbs.shape == (6, 64, 64) and (images.thumbs[1] == RGB_LUMA).all()


def test_reader_is_cached_and_sees_edits(tmp_path):
    root = make_release(tmp_path / "d")
    first = load_images(root, img_size=16)
    again = load_images(root, img_size=16)
    assert again.files == first.files and again.file_hashes == first.file_hashes
    assert bool((again.pixels == first.pixels).all())
    Image.new("L", (300, 200), 30).save(root / "benign" / "benign (2).png")  # same size, new content
    edited = load_images(root, img_size=16)
    assert edited.file_hashes[0] != first.file_hashes[0] and edited.file_hashes[1:] == first.file_hashes[1:]
    assert int(edited.pixels[0].max()) == 30
    clear_cache()
    assert bool((load_images(root, img_size=16).pixels == edited.pixels).all())


def test_masks_and_natural_order():
    assert is_mask("benign (12)_mask.png") and is_mask("benign (12)_mask_1.png") and is_mask("x_MASK_2.PNG")
    assert not is_mask("benign (12).png") and not is_mask("mask.png") and not is_mask("masked (1).png")
    names = ["b (10).png", "b (2).png", "b (1).png", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "b (1).png", "b (2).png", "b (10).png"]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "data folder not found"),
        (lambda root: root.write_text("x"), "not a folder"),
        (lambda root: (root.mkdir(), Image.new("L", (8, 8)).save(root / "a.png")), "no class sub-folders"),
        (lambda root: ((root / "benign").mkdir(parents=True), Image.new("L", (8, 8)).save(root / "benign" / "a.png")),
         "only one class folder"),
        (lambda root: ((root / "a").mkdir(parents=True), (root / "b").mkdir(),
                       Image.new("L", (8, 8)).save(root / "a" / "x.png"),
                       Image.new("L", (8, 8)).save(root / "b" / "x_mask.png")), "holds no images"),
    ],
    ids=["missing", "file", "no-classes", "one-class", "only-masks"],
)
def test_malformed_folders(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(LandscapeError, match=message) as info:
        load_images(root)
    assert "\n" not in str(info.value)


def test_corrupt_and_truncated_images_are_named(tmp_path):
    root = make_release(tmp_path / "d", corrupt=True)
    with pytest.raises(LandscapeError, match=r"cannot read image .*normal \(3\)\.png: corrupt") as info:
        load_images(root)
    assert "\n" not in str(info.value)
    (root / "normal" / "normal (3).png").unlink()
    good = root / "benign" / "benign (2).png"
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(LandscapeError, match=r"benign \(2\)\.png"):
        load_images(root)


def test_bad_img_size(tmp_path):
    for size in (0, 4, 5000, 32.0, True):
        with pytest.raises(LandscapeError, match="img_size"):
            load_images(None, img_size=size)


def test_unreadable_file_gets_one_line(tmp_path):
    root = make_release(tmp_path / "d")
    os.symlink(tmp_path / "nowhere.png", root / "normal" / "normal (9).png")
    with pytest.raises(LandscapeError, match=r"cannot read image .*normal \(9\)\.png"):
        load_images(root)


def test_caliper_drawing_changes_hash_not_layout(tmp_path):
    """Hashes are of file bytes: a re-saved image with a mark differs, an identical copy does not."""
    root = make_release(tmp_path / "d")
    img = Image.open(root / "benign" / "benign (10).png")
    ImageDraw.Draw(img).line((10, 10, 20, 20), fill=(255, 255, 255))
    img.save(root / "malignant" / "copy with mark.png")
    (root / "normal" / "same bytes.png").write_bytes((root / "benign" / "benign (10).png").read_bytes())
    images = load_images(root, img_size=16)
    h = dict(zip(images.files, images.file_hashes))
    assert h["normal/same bytes.png"] == h["benign/benign (10).png"] != h["malignant/copy with mark.png"]
