"""A deterministic synthetic breast-ultrasound phantom, the built-in default data.

Each image is a 128x128 B-mode frame: an echo-level map in decibels plus
speckle, log-compressed onto 0..255.

* background: bright skin line, hypoechoic subcutaneous fat with bright
  Cooper's ligaments and (sometimes) darker fat lobules, streaky brighter
  fibroglandular tissue and striated pectoral muscle, with wavy layer
  boundaries, depth attenuation, thin refraction shadows, dark scanner margins,
  and gain and dynamic range drawn per image;
* ``benign``: a smooth, wider-than-tall oval hypoechoic lesion (some are
  anechoic cysts), often with posterior enhancement or a thin bright capsule;
* ``malignant``: an irregular, spiculated, often taller-than-wide hypoechoic
  lesion, usually with posterior acoustic shadowing and sometimes an
  echogenic halo;
* ``normal``: no lesion.

Class sizes mirror BUSI (437 / 210 / 133). Lesion size, position, contrast
and shape vary, and hard cases overlap on purpose (round malignant lesions
without spicules or shadow, benign lesions with a mild shadow, lesion-like
fat lobules and refraction shadows in any class), so a small CNN learns the
task well above chance but not perfectly.

Speckle: a complex random field filtered by an anisotropic point-spread
function (near-Gaussian by the central limit theorem), squared and lightly
compounded: spatially correlated speckle with a gamma-like intensity.

Reproducibility: image ``k`` of class ``c`` draws everything from
``Generator(PCG64(SeedSequence([seed, c, k])))`` through ``random()`` only
(uniform doubles, the part of numpy's stream that does not change between
versions), and the maps are computed in float64. The 128x128 uint8 pixels are
therefore the same on every machine, and image ``k`` does not depend on how
many images are generated. ``img_size`` versions go through the same PIL
resize as folder images (:mod:`landscape.data.imageops`).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch
from PIL import Image

from landscape.data.imageops import resize_square, thumbnail
from landscape.data.images import Images

CLASSES = ("benign", "malignant", "normal")
COUNTS = (437, 210, 133)
NATIVE = 128
_CHUNK = 32  # images rendered together
_N_UNIFORMS = 160  # uniforms reserved per image for its shape parameters
_LIGAMENTS, _LOBULES, _SPICULES = 4, 3, 8  # most of each per image
_TOP_ROWS = 36  # ligaments and fat lobules live above this coarse row (72 native pixels)


class _Draws:
    """Sequential consumer of a fixed block of uniforms in [0, 1)."""

    def __init__(self, u: np.ndarray):
        self._u = u
        self._i = 0

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        v = self._u[self._i]
        self._i += 1
        return lo + (hi - lo) * float(v)

    def chance(self, p: float) -> float:
        """1.0 with probability ``p``, else 0.0 (a multiplier for optional features)."""
        return float(self.uniform() < p)

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive)."""
        return lo + min(int(self.uniform() * (hi - lo + 1)), hi - lo)


# ----------------------------------------------------------------------------
# Parameters: one flat dict of floats per image; absent features get amplitude 0.
# ----------------------------------------------------------------------------


def _background_params(d: _Draws, normal: bool) -> dict[str, float]:
    n = float(NATIVE)
    p = {
        "skin": d.uniform(2.5, 5.0),
        "fat_depth": d.uniform(0.16, 0.34) * n,
        "b1_amp": d.uniform(1.0, 5.0), "b1_freq": d.uniform(0.5, 1.5), "b1_phase": d.uniform(),
        "gland_thick": d.uniform(0.28, 0.5) * n,
        "b2_amp": d.uniform(1.0, 6.0), "b2_freq": d.uniform(0.3, 1.2), "b2_phase": d.uniform(),
        "fat": d.uniform(-24.0, -18.0), "gland": d.uniform(-17.0, -9.0), "muscle": d.uniform(-24.0, -17.0),
        "muscle_amp": d.uniform(1.5, 3.0), "muscle_k": d.uniform(12.0, 22.0),
        "muscle_tilt": d.uniform(-0.25, 0.25), "muscle_phase": d.uniform(),
        "attenuation": d.uniform(8.0, 20.0),
        "gain": d.uniform(-3.0, 3.0), "range": d.uniform(40.0, 50.0),
    }
    for i in range(3):  # gland streaks: plane waves with mostly vertical wave vectors
        p |= {f"g{i}_ky": d.uniform(4.0, 14.0), f"g{i}_kx": d.uniform(-3.0, 3.0),
              f"g{i}_amp": d.uniform(1.0, 2.5), f"g{i}_phase": d.uniform()}
    n_lig = d.integer(1, _LIGAMENTS)
    for i in range(_LIGAMENTS):  # Cooper's ligaments: short bright oblique ridges in the fat
        p |= {f"l{i}_x": d.uniform(0.0, n), f"l{i}_y": d.uniform(p["skin"], p["fat_depth"]),
              f"l{i}_angle": d.uniform(-0.9, 0.9), f"l{i}_len": d.uniform(10.0, 30.0),
              f"l{i}_width": d.uniform(1.2, 2.0), f"l{i}_amp": d.uniform(4.0, 8.0) * (i < n_lig)}
    n_lob = d.integer(1, _LOBULES) * d.chance(0.7 if normal else 0.35)
    for i in range(_LOBULES):  # fat lobules: darker flat ovals in the fat
        a = d.uniform(5.0, 14.0)
        p |= {f"o{i}_y": d.uniform(p["skin"] + 3.0, p["fat_depth"] + 4.0), f"o{i}_x": d.uniform(10.0, n - 10.0),
              f"o{i}_a": a, f"o{i}_b": a * d.uniform(0.35, 0.65), f"o{i}_angle": d.uniform(-0.3, 0.3),
              f"o{i}_amp": d.uniform(-9.0, -4.0) * (i < n_lob)}
    p |= {"rs_x": d.uniform(10.0, n - 10.0), "rs_top": d.uniform(10.0, 50.0), "rs_width": d.uniform(1.5, 4.0),
          "rs_amp": d.uniform(-8.0, -3.0) * d.chance(0.25)}  # refraction shadow behind a ligament
    for side in ("left", "right"):  # dark scanner margins
        p |= {f"m_{side}": d.uniform(1.0, 8.0) * d.chance(0.15)}
    return p


def _benign_params(d: _Draws) -> dict[str, float]:
    a = d.uniform(5.0, 22.0)
    cyst = d.chance(0.3)
    effect = d.uniform()
    posterior = d.uniform(3.0, 7.0) if (cyst or effect < 0.45) else (-d.uniform(3.0, 9.0) if effect > 0.8 else 0.0)
    k = d.integer(2, 4)
    lobes = d.uniform(0.0, 0.07)
    return {
        "y": d.uniform(0.28, 0.62) * NATIVE, "x": d.uniform(0.22, 0.78) * NATIVE,
        "a": a, "b": a * d.uniform(0.5, 0.85), "angle": d.uniform(-0.35, 0.35),
        "lobe_phase": 2 * np.pi * d.uniform(), **{f"lobe{j}": lobes * (j == k) for j in (2, 3, 4)},
        "level": d.uniform(-34.0, -26.0) if cyst else d.uniform(-18.0, -6.0),
        "capsule": d.uniform(3.0, 6.0) * d.chance(0.4),
        "posterior": posterior,  # > 0: enhancement (cysts), < 0: mild shadow
    }


def _malignant_params(d: _Draws) -> dict[str, float]:
    r0 = d.uniform(5.0, 20.0)
    p = {
        "y": d.uniform(0.28, 0.62) * NATIVE, "x": d.uniform(0.22, 0.78) * NATIVE,
        "a": r0, "b": r0 * d.uniform(0.85, 1.4), "angle": d.uniform(-0.5, 0.5),
        "level": d.uniform(-22.0, -8.0),
        "hetero": d.uniform(1.0, 4.0), "hetero_phase": 2 * np.pi * d.uniform(),
        "halo": d.uniform(3.0, 7.0) * d.chance(0.5),
        "shadow": -d.uniform(3.0, 12.0) * d.chance(0.7), "shadow_width": r0 * d.uniform(0.7, 1.1),
    }
    for k in range(2, 7):  # irregular, angular margin
        p |= {f"h{k}": d.uniform(0.0, 0.1), f"h{k}_phase": 2 * np.pi * d.uniform()}
    n_spicules = d.integer(0, 2) if d.chance(0.25) else d.integer(3, _SPICULES)
    for i in range(_SPICULES):
        p |= {f"s{i}_angle": d.uniform(-np.pi, np.pi), f"s{i}_width": d.uniform(0.1, 0.25),
              f"s{i}_len": d.uniform(0.2, 0.6) * (i < n_spicules)}
    return p


# ----------------------------------------------------------------------------
# Rendering, vectorised over a chunk of images: parameters are arrays [B, 1, 1].
# ----------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _wave(p, key, y, x, ky, kx):
    """``sin(2 pi (ky y + kx x) / n + phase)`` as a sum of separable products."""
    n = float(NATIVE)
    ay = 2 * np.pi * (ky * y / n + p[f"{key}_phase"])
    bx = 2 * np.pi * kx * x / n
    return np.sin(ay) * np.cos(bx) + np.cos(ay) * np.sin(bx)


def _ellipse(p, key, y, x):
    """Normalised elliptic coordinates (zr, zi) and radius of ellipse ``key``."""
    c, s = np.cos(p[f"{key}angle"]), np.sin(p[f"{key}angle"])
    dx, dy = x - p[f"{key}x"], y - p[f"{key}y"]
    zr = (dx * c + dy * s) / p[f"{key}a"]
    zi = (dy * c - dx * s) / p[f"{key}b"]
    rho = np.sqrt(zr * zr + zi * zi)
    safe = np.maximum(rho, 1e-9)
    return zr / safe, zi / safe, rho


def _column(y, x, cx, top, half_width):
    """Soft vertical band below depth ``top`` around lateral position ``cx``; 0..1."""
    lateral = (x - cx) / half_width
    return np.exp(-lateral * lateral) * _sigmoid((y - top) / 3.0)


def _render_background(p, y, x):
    """Echo level (dB) of the layered tissue, [B, H, W]."""
    n = float(NATIVE)
    b1 = p["fat_depth"] + p["b1_amp"] * np.sin(2 * np.pi * (p["b1_freq"] * x / n + p["b1_phase"]))
    b2 = b1 + p["gland_thick"] + p["b2_amp"] * np.sin(2 * np.pi * (p["b2_freq"] * x / n + p["b2_phase"]))
    in_skin = 1.0 - _sigmoid((y - p["skin"]) / 0.7)
    s1 = _sigmoid((y - b1) / 1.5)
    s2 = _sigmoid((y - b2) / 2.0)
    in_fat = (1.0 - in_skin) * (1.0 - s1)
    in_gland = s1 * (1.0 - s2)
    gland = p["gland"] + sum(p[f"g{i}_amp"] * _wave(p, f"g{i}", y, x, p[f"g{i}_ky"], p[f"g{i}_kx"]) for i in range(3))
    muscle = p["muscle"] + p["muscle_amp"] * _wave(p, "muscle", y, x, p["muscle_k"], p["muscle_k"] * p["muscle_tilt"])
    level = -8.0 * in_skin + p["fat"] * in_fat + gland * in_gland + muscle * s2

    top, yt = slice(0, _TOP_ROWS), y[:, :_TOP_ROWS]
    extra = np.zeros_like(level[:, top])
    for i in range(_LIGAMENTS):
        c, s = np.cos(p[f"l{i}_angle"]), np.sin(p[f"l{i}_angle"])
        dx, dy = x - p[f"l{i}_x"], yt - p[f"l{i}_y"]
        across = (dx * c - dy * s) / p[f"l{i}_width"]
        along = (dx * s + dy * c) / p[f"l{i}_len"]
        ridge = np.clip(1.0 - across * across, 0.0, None) ** 2 * np.clip(1.0 - along * along, 0.0, None)
        extra += p[f"l{i}_amp"] * ridge
    extra *= in_fat[:, top]
    for i in range(_LOBULES):
        _, _, rho = _ellipse(p, f"o{i}_", yt, x)
        extra += p[f"o{i}_amp"] * (1.0 - _sigmoid((rho - 1.0) * p[f"o{i}_a"] / 1.2))
    level[:, top] += extra

    level += p["rs_amp"] * _column(y, x, p["rs_x"], p["rs_top"], p["rs_width"])
    level -= p["attenuation"] * y / n
    level -= 40.0 * (1.0 - _sigmoid((x - p["m_left"]) / 0.8)) * (p["m_left"] > 0)
    level -= 40.0 * (1.0 - _sigmoid((n - x - p["m_right"]) / 0.8)) * (p["m_right"] > 0)
    return level


def _render_benign(p, y, x):
    """DB change of a smooth oval lesion with capsule and posterior effects."""
    zr, zi, rho = _ellipse(p, "", y, x)
    c2, s2 = zr * zr - zi * zi, 2 * zr * zi
    c3, s3 = c2 * zr - s2 * zi, s2 * zr + c2 * zi
    c4, s4 = c3 * zr - s3 * zi, s3 * zr + c3 * zi
    cp, sp = np.cos(p["lobe_phase"]), np.sin(p["lobe_phase"])
    lobes = sum(p[f"lobe{k}"] * (ck * cp - sk * sp) for k, ck, sk in ((2, c2, s2), (3, c3, s3), (4, c4, s4)))
    edge = (rho - 1.0 - lobes) * p["b"]
    inside = 1.0 - _sigmoid(edge / 0.7)
    out = p["level"] * inside + p["capsule"] * np.exp(-0.5 * edge * edge)
    out += p["posterior"] * _column(y, x, p["x"], p["y"] + 0.6 * p["b"], 0.9 * p["a"]) * (1.0 - inside)
    return out


def _render_malignant(p, y, x):
    """DB change of an irregular spiculated lesion with halo and posterior shadow."""
    zr, zi, rho = _ellipse(p, "", y, x)
    boundary = np.ones_like(rho)
    ck, sk = zr, zi
    for k in range(2, 7):
        ck, sk = ck * zr - sk * zi, sk * zr + ck * zi
        boundary += p[f"h{k}"] * (ck * np.cos(p[f"h{k}_phase"]) - sk * np.sin(p[f"h{k}_phase"]))
    for i in range(_SPICULES):
        cos_gap = zr * np.cos(p[f"s{i}_angle"]) + zi * np.sin(p[f"s{i}_angle"])
        sharp = 1.0 / (1.0 - np.cos(p[f"s{i}_width"]))
        boundary += p[f"s{i}_len"] * np.clip(1.0 - (1.0 - cos_gap) * sharp, 0.0, None) ** 2
    edge = (rho - boundary) * p["a"]
    inside = 1.0 - _sigmoid(edge / 0.7)
    hetero = p["hetero"] * np.sin(0.9 * (x - p["x"]) + p["hetero_phase"]) * np.sin(0.7 * (y - p["y"]))
    out = (p["level"] + hetero) * inside
    outside = np.clip(edge, 0.0, None)
    out += p["halo"] * np.exp(-0.125 * outside * outside) * (1.0 - inside)
    out += p["shadow"] * _column(y, x, p["x"], p["y"], p["shadow_width"]) * (1.0 - inside)
    return out


@functools.lru_cache(maxsize=1)
def _psf_transform() -> np.ndarray:
    """Fourier transform of the (periodic, unit-energy) point-spread function."""
    def periodic(kernel: np.ndarray) -> np.ndarray:
        out = np.zeros((NATIVE, NATIVE))
        r = kernel.shape[0] // 2, kernel.shape[1] // 2
        for (i, j), v in np.ndenumerate(kernel):
            out[(i - r[0]) % NATIVE, (j - r[1]) % NATIVE] = v
        return np.fft.rfft2(out)

    axial = np.exp(-0.5 * (np.arange(-2, 3) / 0.8) ** 2)
    lateral = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    psf = np.outer(axial, lateral)
    return periodic(psf / np.sqrt((psf**2).sum()))


def _speckle_db(u: np.ndarray) -> np.ndarray:
    """Speckle in dB (10 log10 of unit-mean intensity) from uniforms ``u`` [B, 2, H, W].

    The field is filtered circularly (by FFT), so it has no border effects.
    """
    field = np.fft.irfft2(np.fft.rfft2(u - 0.5) * _psf_transform(), s=(NATIVE, NATIVE))
    intensity = 6.0 * (field[:, 0] ** 2 + field[:, 1] ** 2)  # uniform(-1/2, 1/2) has variance 1/12
    # Light lateral compounding lowers the speckle contrast towards that of real scanners.
    intensity = 0.5 * intensity + 0.25 * (np.roll(intensity, 1, axis=2) + np.roll(intensity, -1, axis=2))
    return 10.0 * np.log10(intensity + 1e-6)


def _upsample2(a: np.ndarray, axis: int) -> np.ndarray:
    """Bilinear 2x upsampling along ``axis`` (cell-centred, edges replicated)."""
    a = np.moveaxis(a, axis, -1)
    prev = np.concatenate([a[..., :1], a[..., :-1]], axis=-1)
    nxt = np.concatenate([a[..., 1:], a[..., -1:]], axis=-1)
    out = np.empty(a.shape[:-1] + (2 * a.shape[-1],))
    out[..., 0::2] = 0.75 * a + 0.25 * prev
    out[..., 1::2] = 0.75 * a + 0.25 * nxt
    return np.moveaxis(out, -1, axis)


_PARAMS = {"benign": _benign_params, "malignant": _malignant_params, "normal": None}
_RENDER = {"benign": _render_benign, "malignant": _render_malignant, "normal": None}


def generate(seed: int, label: int, indices) -> np.ndarray:
    """``uint8 [len(indices), 128, 128]`` phantom images ``indices`` of class ``label``."""
    name = CLASSES[label]
    # Echo levels are smooth: render them on a 2x coarser grid (pixel units of the
    # native image), then upsample bilinearly; speckle stays at full resolution.
    coarse = np.arange(NATIVE // 2, dtype=np.float64) * 2.0 + 1.0
    y, x = coarse[None, :, None], coarse[None, None, :]
    indices = [int(i) for i in indices]
    out = np.empty((len(indices), NATIVE, NATIVE), dtype=np.uint8)
    for start in range(0, len(indices), _CHUNK):
        chunk = indices[start:start + _CHUNK]
        rows, lesions = [], []
        uniforms = np.empty((len(chunk), 2, NATIVE, NATIVE))
        for j, k in enumerate(chunk):
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, label, k])))
            d = _Draws(rng.random(_N_UNIFORMS))
            rows.append(_background_params(d, name == "normal"))
            if _PARAMS[name] is not None:
                lesions.append(_PARAMS[name](d))
            uniforms[j] = rng.random((2, NATIVE, NATIVE))
        p = {key: np.array([r[key] for r in rows])[:, None, None] for key in rows[0]}
        level = _render_background(p, y, x)
        if lesions:
            q = {key: np.array([r[key] for r in lesions])[:, None, None] for key in lesions[0]}
            level += _RENDER[name](q, y, x)
        level = _upsample2(_upsample2(level, axis=1), axis=2)
        # Log compression: [-range, 0] dB (after gain) onto [0, 255].
        level += _speckle_db(uniforms)
        level += p["gain"] + p["range"]
        level *= 255.0 / p["range"]
        np.clip(level, 0.0, 255.0, out=level)
        out[start:start + len(chunk)] = np.rint(level)
    return out


@functools.lru_cache(maxsize=4)
def _native(seed: int) -> tuple:
    """Labels, file names, native pixels, hashes and thumbnails of phantom ``seed``."""
    labels = np.concatenate([np.full(n, c, dtype=np.int64) for c, n in enumerate(COUNTS)])
    native = np.concatenate([generate(seed, c, range(n)) for c, n in enumerate(COUNTS)])
    files = [f"{CLASSES[c]}/phantom_{k + 1:04d}.png" for c, n in enumerate(COUNTS) for k in range(n)]
    hashes = [hashlib.sha256(img.tobytes()).hexdigest() for img in native]
    thumbs = np.stack([thumbnail(Image.fromarray(img, mode="L")) for img in native])
    return labels, files, native, hashes, thumbs


@functools.lru_cache(maxsize=8)
def load_phantom(seed: int = 0, img_size: int = 64) -> Images:
    """The phantom as :class:`Images` at ``img_size`` (cached per seed and size); ``seed`` >= 0."""
    labels, files, native, hashes, thumbs = _native(seed)
    pixels = np.stack([resize_square(Image.fromarray(img, mode="L"), img_size) for img in native])[:, None]
    return Images(
        name="phantom",
        kind="phantom",
        root=None,
        classes=list(CLASSES),
        files=list(files),
        labels=labels.copy(),
        pixels=torch.from_numpy(pixels),
        file_hashes=list(hashes),
        orig_sizes=[(NATIVE, NATIVE)] * len(files),
        thumbs=thumbs,
        orig_modes=["L"] * len(files),
        seed=seed,
    )
