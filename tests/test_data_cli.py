"""``landscape data inspect`` through the CLI."""

from __future__ import annotations

import json
import shutil

from PIL import Image


def small_folder(root):
    """Two classes, mixed sizes and modes, a mask, and one image filed under both classes."""
    (root / "benign").mkdir(parents=True)
    (root / "malignant").mkdir()
    for k, size in enumerate(((80, 60), (64, 64), (100, 90))):
        img = Image.effect_noise(size, 40 + 20 * k).convert("RGB" if k % 2 else "L")
        img.save(root / "benign" / f"benign ({k + 1}).png")
    Image.new("L", (80, 60), 255).save(root / "benign" / "benign (1)_mask.png")
    Image.effect_noise((70, 70), 80).save(root / "malignant" / "malignant (1).png")
    shutil.copy(root / "benign" / "benign (1).png", root / "malignant" / "malignant (2).png")
    return root


def test_inspect_table_and_json(cli, tmp_path):
    root = small_folder(tmp_path / "Mini")
    out_json = tmp_path / "report" / "inspect.json"
    res = cli("data", "inspect", root, "--json", out_json, "--img-size", "32")
    assert res.code == 0, res.err
    assert "mini" in res.out and "label conflicts" in res.out and "benign/benign (1).png" in res.out
    report = json.loads(out_json.read_text())
    assert report["source"] == "mini" and report["n_images"] == 5 and report["skipped_masks"] == 1
    assert [(c["name"], c["images"], c["in_conflicts"]) for c in report["classes"]] == [("benign", 3, 1), ("malignant",
                                                                                                           2, 1)]
    assert report["conflicts"] == [{"files": ["benign/benign (1).png", "malignant/malignant (2).png"],
                                    "classes": ["benign", "malignant"], "conflict": True,
                                    "score_min": report["conflicts"][0]["score_min"],
                                    "score_max": report["conflicts"][0]["score_max"]}]
    assert report["conflicts"][0]["score_min"] > 0.99
    assert report["duplicates"]["n_groups"] == 1 and report["duplicates"]["threshold"] == 0.55
    assert report["sizes"]["distinct"] == 4 and report["modes"] == {"L": 4, "RGB": 1}
    assert report["settings"] == {"img_size": 32, "threshold": 0.55, "seed": 0} and "torch" in report["versions"]


def test_inspect_phantom_by_default(cli):
    res = cli("data", "inspect", "--show", "0")
    assert res.code == 0, res.err
    assert "phantom" in res.out and "437" in res.out and "0 groups" in res.out


def test_bad_input_one_line_exit_2(cli, tmp_path):
    res = cli("data", "inspect", tmp_path / "nope")
    assert res.code == 2 and res.err.strip() == f"error: data folder not found: {tmp_path / 'nope'}"
    root = small_folder(tmp_path / "bad")
    (root / "benign" / "broken.png").write_bytes(b"not a png")
    res = cli("data", "inspect", root)
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and "broken.png: corrupt or not an image" in res.err
    assert "0x" not in res.err  # no object reprs
    res = cli("data", "inspect", root, "--threshold", "2")  # checked before any image is read
    assert res.code == 2 and "threshold must be in (0, 1]" in res.err


def test_help_has_examples(cli):
    res = cli("data", "inspect", "--help")
    assert res.code == 0 and "Examples:" in res.out and "--json" in res.out
