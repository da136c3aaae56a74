"""The decoded-data cache on disk: hit, miss, changed / added / removed file, corrupt entry, off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.data import clear_cache, find_duplicates, load_images
from landscape.data import duplicates as duplicates_module
from landscape.data import folder as folder_module
from landscape.data.cachedir import ENV, cache_dir, configure
from landscape.data.diskcache import CacheWarning
from landscape.errors import LandscapeError


def _write(path, seed, size=(40, 30)):  # .png or .bmp by the name
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=size[::-1], dtype=np.uint8)).save(path)


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "set"
    for k in range(3):
        _write(root / "benign" / f"b{k}.png", k)
        _write(root / "malignant" / f"m{k}.png", 10 + k)
    _write(root / "malignant" / "m3.bmp", 0)  # b0's pixels in other bytes: a duplicate across classes
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Cache at tmp_path/cache; counts decodes; each load starts with an empty in-memory cache."""
    monkeypatch.setenv(ENV, str(tmp_path / "cache"))
    configure()
    decodes = []
    real = folder_module._decode

    def counting(data, img_size):
        decodes.append(img_size)
        return real(data, img_size)

    monkeypatch.setattr(folder_module, "_decode", counting)

    def load(root, img_size=16):
        clear_cache()
        decodes.clear()
        return load_images(root, img_size=img_size)

    load.decodes = decodes
    yield load
    clear_cache()


def _entries(tmp_path, kind="decoded"):
    return sorted((tmp_path / "cache" / kind).glob("*.npz"))


def _same(a, b):
    assert a.files == b.files and a.file_hashes == b.file_hashes and a.orig_sizes == b.orig_sizes
    assert a.orig_modes == b.orig_modes and torch.equal(a.pixels, b.pixels) and np.array_equal(a.thumbs, b.thumbs)


def _fresh(root, img_size=16):
    """Independent answer: a load with the disk cache off."""
    configure(enabled=False)
    try:
        clear_cache()
        return load_images(root, img_size=img_size)
    finally:
        configure()


def test_miss_then_hit_decodes_nothing(cache, data, tmp_path):
    first = cache(data)
    assert len(cache.decodes) == 7
    assert len(_entries(tmp_path)) == 1
    second = cache(data)
    assert cache.decodes == []
    _same(second, first)
    _same(second, _fresh(data))
    cache(data, img_size=24)  # another size is another entry
    assert len(cache.decodes) == 7 and len(_entries(tmp_path)) == 2


def test_changed_added_and_removed_files_invalidate_exactly_their_entries(cache, data, tmp_path):
    cache(data)
    for change in (lambda: _write(data / "benign" / "b1.png", 99), lambda: _write(data / "benign" / "b9.png", 98)):
        change()  # a changed file, then an added one: only it is decoded
        got = cache(data)
        assert len(cache.decodes) == 1
        _same(got, _fresh(data))
    (data / "malignant" / "m2.png").unlink()  # removed: nothing to decode, the entry forgets it
    after = cache(data)
    assert cache.decodes == [] and "malignant/m2.png" not in after.files
    _same(after, _fresh(data))
    assert len(_entries(tmp_path)) == 1
    with np.load(_strip(_entries(tmp_path)[0]), allow_pickle=False) as npz:
        assert sorted(npz["hashes"].tolist()) == sorted(set(after.file_hashes))
    cache(data)
    assert cache.decodes == []


def _strip(path):
    """The .npz body of a cache entry (after its header line)."""
    import io

    return io.BytesIO(path.read_bytes().partition(b"\n")[2])


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entry_is_rebuilt_with_a_warning(cache, data, tmp_path, damage):
    cache(data)
    (entry,) = _entries(tmp_path)
    raw = bytearray(entry.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[-100] ^= 0xFF
    else:
        raw = bytearray(b"not a cache entry")
    entry.write_bytes(bytes(raw))
    with pytest.warns(CacheWarning, match="corrupt cache entry"):
        rebuilt = cache(data)
    assert len(cache.decodes) == 7  # never trusted: decoded again
    _same(rebuilt, _fresh(data))
    cache(data)  # and rewritten intact
    assert cache.decodes == []


def test_entry_with_another_key_is_not_trusted(cache, data, tmp_path):
    cache(data)
    (entry,) = _entries(tmp_path)
    other = tmp_path / "set2"
    data.rename(other)
    cache(other)  # the same files under another root: its own entry
    (mine,) = [p for p in _entries(tmp_path) if p != entry]
    entry.write_bytes(mine.read_bytes())  # valid checksum, wrong key
    other.rename(data)
    with pytest.warns(CacheWarning, match="another key"):
        cache(data)
    assert len(cache.decodes) == 7


def test_duplicate_groups_are_cached_by_hashes_and_settings(cache, data, tmp_path, monkeypatch):
    images = cache(data)
    calls = []
    real = duplicates_module.coarse_pairs
    monkeypatch.setattr(duplicates_module, "coarse_pairs", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = find_duplicates(images)
    assert calls == [1] and first.groups == [[0, 6]] and first.conflicts == [[0, 6]]
    again = find_duplicates(images)
    assert calls == [1] and len(_entries(tmp_path, "duplicates")) == 1
    assert again.pairs == first.pairs and again.groups == first.groups and again.conflicts == first.conflicts
    assert np.array_equal(again.group_ids, first.group_ids) and again.settings == first.settings
    find_duplicates(images, threshold=0.9)  # other settings: computed
    assert calls == [1, 1]
    _write(data / "benign" / "b2.png", 0)  # now b0, b2 and m3 are one group
    changed = find_duplicates(cache(data))
    assert calls == [1, 1, 1] and changed.groups == [[0, 2, 6]]


def test_no_cache_writes_nothing(cache, data, tmp_path):
    configure(enabled=False)
    try:
        cache(data)
        find_duplicates(load_images(data, img_size=16))
    finally:
        configure()
    assert not (tmp_path / "cache").exists()


def test_cache_folder_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "landscape"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "landscape"
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    monkeypatch.setenv(ENV, "off")
    assert cache_dir() is None
    configure(tmp_path / "flag")
    try:
        assert cache_dir() == tmp_path / "flag"
        configure(tmp_path / "flag", enabled=False)
        assert cache_dir() is None
    finally:
        configure()


def test_cache_inside_the_data_folder_is_refused(data, monkeypatch):
    monkeypatch.setenv(ENV, str(data / ".cache"))
    clear_cache()
    with pytest.raises(LandscapeError, match="inside the data folder"):
        load_images(data, img_size=16)


def test_cli_cache_flags(cli, data, tmp_path):
    folder = tmp_path / "cli-cache"
    r = cli("--cache-dir", folder, "data", "inspect", data, "--img-size", "16")
    assert r.code == 0, r.err
    assert [len(list((folder / kind).glob("*.npz"))) for kind in ("decoded", "duplicates")] == [1, 1]
    r = cli("--cache-dir", data / "benign" / "b0.png", "data", "inspect", data)
    assert r.code == 2 and r.err.startswith("error: ") and "--cache-dir" in r.err and len(r.err.splitlines()) == 1
    other = tmp_path / "unused"
    r = cli("--cache-dir", other, "--no-cache", "data", "inspect", data, "--img-size", "16")
    assert r.code == 0 and not other.exists()
