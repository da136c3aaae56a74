"""Cross-site evaluation: the CSV metadata option, class matching, metrics vs scikit-learn, patient grouping."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from landscape.data import load_images, to_float
from landscape.data.metadata import read_metadata
from landscape.errors import LandscapeError
from landscape.external import group_members, resample

ROOT = Path(__file__).resolve().parents[1]
BUSBRA = ROOT.parent / "shared" / "data" / "busbra"
CSV_ARGS = {"file_col": "ID", "label_col": "Pathology", "group_col": "Case", "env_col": "Device"}


@pytest.fixture(scope="module")
def busbra() -> Path:
    if not (BUSBRA / "benign").is_dir() or not (BUSBRA / "bus_data.csv").is_file():
        pytest.skip(f"BUS-BRA not found at {BUSBRA}")
    return BUSBRA


@pytest.fixture(scope="module")
def evaluated(tiny_run, busbra):
    """The phantom-trained 3-class tiny run evaluated on BUS-BRA (32 px), with its checkpoint."""
    from landscape.analysis.external import analyze
    from landscape.checkpoint import load_checkpoint

    ck = load_checkpoint(tiny_run, device="cpu")
    rec = analyze(ck, busbra, csv=busbra / "bus_data.csv", n_boot=30, progress=False, **CSV_ARGS)
    return ck, rec


def _folder(root: Path, classes: dict[str, list[str]]) -> Path:
    for cls, names in classes.items():
        (root / cls).mkdir(parents=True)
        for i, name in enumerate(names):
            Image.fromarray(np.full((12, 12), 40 * i + 10, np.uint8)).save(root / cls / name)
    return root


def _csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_metadata_matches_by_stem_name_or_path_and_checks_labels(tmp_path):
    root = _folder(tmp_path / "d", {"benign": ["a.png", "b.png"], "malignant": ["c.png"]})
    images = load_images(root, img_size=8)
    rows = [{"f": "a", "y": "benign", "p": "1", "s": "x"}, {"f": "b.png", "y": "benign", "p": "1", "s": "y"},
            {"f": "malignant/c.png", "y": "Malignant", "p": "2", "s": "x"},
            {"f": "zzz", "y": "benign", "p": "3", "s": "x"}]
    meta = read_metadata(images, _csv(tmp_path / "m.csv", rows), "f", "y", "p", "s")
    assert meta.groups == ["1", "1", "2"] and meta.envs == ["x", "y", "x"] and meta.unmatched_rows == 1
    rows[0]["y"] = "malignant"
    with pytest.raises(LandscapeError, match="labelled differently"):
        read_metadata(images, _csv(tmp_path / "m2.csv", rows), "f", "y")
    with pytest.raises(LandscapeError, match="have no row"):
        read_metadata(images, _csv(tmp_path / "m3.csv", rows[1:]), "f")
    with pytest.raises(LandscapeError, match="no column"):
        read_metadata(images, tmp_path / "m3.csv", "file")


def test_unknown_external_class_is_a_clean_error(tiny_run, tmp_path, cli):
    root = _folder(tmp_path / "ext", {"benign": ["a.png", "b.png"], "cyst": ["c.png"]})
    res = cli("evaluate", str(tiny_run), "--data", str(root))
    assert res.code == 2 and "cyst" in res.err and "not known to the model" in res.err
    res = cli("evaluate", str(tiny_run), "--data", str(root), "--csv-group-col", "Case")
    assert res.code == 2 and "need --csv" in res.err


def test_busbra_metrics_match_scikit_learn(evaluated, busbra):
    ck, rec = evaluated
    ext = rec["result"]["external"]
    scores = ext["scores"]
    y = np.array([s["label"] == "malignant" for s in scores])
    score = np.array([s["score"] for s in scores])
    assert ext["overall"]["n"] == 1875 and ext["overall"]["counts"] == [1268, 607]
    assert ext["overall"]["auroc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert ext["overall"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, score > 0.5), abs=1e-12)
    # the malignancy score by hand, from the model's logits, with the checkpoint's preprocessing
    images = load_images(busbra, img_size=ck.meta["data"]["img_size"])
    x = to_float(images.pixels[:5], ck.meta["data"]["mean"], ck.meta["data"]["std"])
    with torch.no_grad():
        p = torch.softmax(ck.model(x).double(), 1).numpy()
    b, m = ck.classes.index("benign"), ck.classes.index("malignant")
    assert score[:5] == pytest.approx(p[:, m] / (p[:, b] + p[:, m]), rel=1e-5)
    # per scanner: the same metrics on each subset
    envs = np.array([s["env"] for s in scores])
    assert sum(v["n"] for v in ext["environments"].values()) == 1875 and len(ext["environments"]) == 4
    for env, metrics in ext["environments"].items():
        idx = envs == env
        assert metrics["auroc"] == pytest.approx(roc_auc_score(y[idx], score[idx]), abs=1e-12)
    assert ext["drop"]["auroc"] == pytest.approx(ext["internal"]["auroc"] - ext["overall"]["auroc"])
    assert ext["source"] == "busbra" and len(ext["content_hash"]) == 16 and rec["kind"] == "metrics"


def test_busbra_patients_are_resampled_whole(evaluated, busbra):
    _, rec = evaluated
    ext = rec["result"]["external"]
    groups = [s["group"] for s in ext["scores"]]
    assert ext["overall"]["n_groups"] == len(set(groups)) == 1064
    members = group_members(groups)
    rng = np.random.default_rng(0)
    case = np.array(groups)
    for _ in range(5):
        counts = np.bincount(resample(members, rng), minlength=len(groups))
        for g in members:  # every image of a patient is drawn as often as the others of that patient
            assert len(set(counts[g])) == 1 and set(case[g]) == {case[g[0]]}
    lo, hi = ext["overall"]["auroc_ci"]
    assert lo <= ext["overall"]["auroc"] <= hi


def test_evaluation_is_cached(evaluated, busbra):
    from landscape.analysis.external import analyze

    ck, rec = evaluated
    again = analyze(ck, busbra, csv=busbra / "bus_data.csv", n_boot=30, progress=False, **CSV_ARGS)
    assert again["path"] == rec["path"] and again["provenance"]["created"] == rec["provenance"]["created"]


def test_study_checks_external_options_before_training(tmp_path, cli):
    res = cli("study", "--quick", "--out", str(tmp_path / "s"), "--external", str(tmp_path / "nowhere"))
    assert res.code == 2 and "external data folder not found" in res.err
    res = cli("study", "--quick", "--out", str(tmp_path / "s"), "--external", str(tmp_path), "--csv-env-col", "Device")
    assert res.code == 2 and "need --csv" in res.err
    assert not (tmp_path / "s").exists()


def test_cli_warns_on_a_phantom_model_and_rounds_the_drop(evaluated, busbra, cli):
    ck, rec = evaluated
    res = cli("evaluate", ck.run_dir, "--data", busbra, "--csv", busbra / "bus_data.csv", "--n-boot", "30",
              "--csv-file-col", "ID", "--csv-label-col", "Pathology", "--csv-group-col", "Case", "--csv-env-col",
              "Device")
    assert res.code == 0, res.err
    drop = rec["result"]["external"]["drop"]
    assert (f"drop (internal − external): AUROC {drop['auroc']:.3g}, balanced accuracy "
            f"{drop['balanced_accuracy']:.3g}") in res.out
    assert f"warning: {ck.run_dir.name} was trained on the synthetic phantom" in res.out
    assert f"cached: computed {rec['provenance']['created']} with " in res.out  # the fixture computed it


def test_vectorised_group_bootstrap_equals_scoring_each_resample_with_sklearn():
    """binary_metrics scores all resamples at once; each row equals scikit-learn on that resample's images."""
    from landscape.external.bootstrap import group_weights
    from landscape.external.scoring import auroc_rows, balanced_accuracy_rows

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 200)
    score = np.round(rng.random(200), 2)  # ties across and within classes
    pred = rng.integers(0, 3, 200)
    groups = rng.integers(0, 70, 200)
    weights = group_weights(groups, 40, seed=5)
    members, draws = group_members(groups), np.random.default_rng(5)
    for b in range(40):
        idx = resample(members, draws)
        assert np.array_equal(np.bincount(idx, minlength=200), weights[b])
        assert auroc_rows(score, labels == 1, weights[b:b + 1])[0] == pytest.approx(
            roc_auc_score(labels[idx] == 1, score[idx]), abs=1e-12)
        assert balanced_accuracy_rows(labels, pred, weights[b:b + 1])[0] == pytest.approx(
            balanced_accuracy_score(labels[idx], pred[idx]), abs=1e-12)
    one_class = np.zeros((1, 200))
    one_class[0, labels == 1] = 1
    assert np.isnan(auroc_rows(score, labels == 1, one_class)[0])
