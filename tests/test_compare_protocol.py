"""`landscape compare`'s protocol: in-site CIs over near-duplicate groups, and the compute each run took."""

from __future__ import annotations

import json
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from landscape.errors import LandscapeError
from landscape.external.bootstrap import group_weights
from landscape.external.scoring import auroc_rows, balanced_accuracy_rows
from landscape.report.compare import ci_unit, compare_runs, in_site_cis, near_duplicate_groups
from landscape.report.compare_panel import paired_figure


def test_group_weights_draw_whole_groups_as_often_as_there_are_groups():
    groups = np.array([7, 7, 7, 2, 5, 5, 9])  # ids need not be 0..G-1; 4 groups
    w = group_weights(groups, 20000, np.random.default_rng(0))
    assert w.shape == (20000, 7) and w.dtype.kind == "i"
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 1] == w[:, 2]).all() and (w[:, 4] == w[:, 5]).all()
    per_group = w[:, [0, 3, 4, 6]]
    assert (per_group.sum(1) == 4).all()  # 4 draws of a group per resample
    # a group's count is Binomial(4, 1/4): mean 1, variance 3/4
    assert per_group.mean() == pytest.approx(1.0, abs=0.01)
    assert per_group.var(axis=0) == pytest.approx([0.75] * 4, abs=0.03)


def test_weighted_metrics_equal_sklearn_on_the_resampled_images():
    rng = np.random.default_rng(1)
    n = 40
    labels = rng.integers(0, 3, n)
    probs = rng.dirichlet(np.ones(3), n).round(1)  # rounded: many tied scores
    pred = probs.argmax(1)
    w = group_weights(rng.integers(0, 12, n), 100, rng)
    bacc = balanced_accuracy_rows(labels, pred, w)
    auroc = auroc_rows(probs[:, 1], labels == 1, w)
    undefined = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a resample predicts a class it does not hold
        for k in range(len(w)):
            idx = np.repeat(np.arange(n), w[k])
            assert bacc[k] == pytest.approx(balanced_accuracy_score(labels[idx], pred[idx]), abs=1e-12)
            positive = labels[idx] == 1
            if positive.all() or not positive.any():
                assert np.isnan(auroc[k])
                undefined += 1
            else:
                assert auroc[k] == pytest.approx(roc_auc_score(positive, probs[idx, 1]), abs=1e-12)
    one_class = auroc_rows(np.array([0.1, 0.2, 0.3]), np.array([True, True, False]), np.array([[1, 2, 0]]))
    assert np.isnan(one_class[0]) and undefined < len(w)


def _duplicated_sample(rng, per_class, p):
    """Groups of 1 or 4 identical predictions; a group is right with probability p of its class."""
    sizes = rng.choice([1, 4], size=2 * per_class)
    cls = np.repeat([0, 1], per_class)
    correct = rng.random(2 * per_class) < np.asarray(p)[cls]
    labels = np.repeat(cls, sizes)
    pred = np.where(np.repeat(correct, sizes), labels, 1 - labels)
    return labels, np.eye(2)[pred], np.repeat(np.arange(2 * per_class), sizes)


def test_group_bootstrap_covers_the_truth_where_the_image_bootstrap_does_not():
    """Duplicated images: the group CI is wider and covers the population balanced accuracy at ~95%."""
    p, reps = (0.8, 0.65), 300
    truth = np.mean(p)  # recall of each class = p of its class: equal-size copies do not change it
    rng = np.random.default_rng(0)
    covered = {"group": 0, "image": 0}
    width = {"group": 0.0, "image": 0.0}
    for r in range(reps):
        labels, probs, groups = _duplicated_sample(rng, 40, p)
        for unit, ids in (("group", groups), ("image", np.arange(len(labels)))):
            lo, hi = in_site_cis(labels, probs, ids, None, 400, r)["test_balanced_accuracy_ci"]
            covered[unit] += lo <= truth <= hi
            width[unit] += (hi - lo) / reps
    assert 0.91 <= covered["group"] / reps <= 0.98
    assert covered["image"] / reps < 0.8  # images resampled: the copies shrink the interval
    assert width["group"] > 1.5 * width["image"]


def test_in_site_cis_widen_with_copies_and_give_no_auroc_without_a_positive_class():
    rng = np.random.default_rng(3)
    labels, probs, groups = _duplicated_sample(rng, 40, (0.8, 0.65))
    probs = 0.5 * probs + 0.5 * rng.random(probs.shape)  # untied scores for the AUROC
    by_group = in_site_cis(labels, probs, groups, 1, 500, 0)
    by_image = in_site_cis(labels, probs, np.arange(len(labels)), 1, 500, 0)
    for key in ("test_balanced_accuracy_ci", "test_auroc_ci"):
        assert np.diff(by_group[key])[0] > 1.3 * np.diff(by_image[key])[0]
    assert in_site_cis(labels, probs, groups, None, 50, 0)["test_auroc_ci"] is None
    assert ci_unit(np.array([4, 4, 1])).startswith("near-duplicate groups (2 over 3 test images")
    assert ci_unit(np.arange(3)).startswith("test images (3; no near-duplicates")


def _folder(root, rng):
    """benign/malignant/normal folders of noise images; in benign and malignant 3 images have 2 extra copies."""
    truth = {}
    for cls in ("benign", "malignant", "normal"):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, size=(40, 40), dtype=np.uint8)).save(root / cls / f"{cls} ({i}).png")
            truth[f"{cls}/{cls} ({i}).png"] = f"{cls}{i}"
            if cls != "normal" and i < 3:
                for c in range(2):
                    name = f"{cls} ({i}) copy{c}.png"
                    shutil.copy(root / cls / f"{cls} ({i}).png", root / cls / name)
                    truth[f"{cls}/{name}"] = f"{cls}{i}"
    return truth


def _checkpoint_like(folder, **cfg):
    """What :func:`near_duplicate_groups` reads of a checkpoint, with the data meta training stores."""
    from landscape.train import TrainConfig
    from landscape.train.prepare import prepare_data

    meta = prepare_data(TrainConfig(data=str(folder), model="cnn-tiny", img_size=16, **cfg)).data_meta
    return SimpleNamespace(meta={"data": meta}, data_root=str(folder), path=folder / "final.pt")


def test_near_duplicate_groups_are_the_splits_groups_of_the_test_images(tmp_path):
    truth = _folder(tmp_path / "data", np.random.default_rng(0))
    ck = _checkpoint_like(tmp_path / "data", classes=["benign", "malignant"], split_seed=3)
    split = ck.meta["data"]["split"]
    assert split["classes"] == ["benign", "malignant"] and split["n_duplicate_groups"] == 6
    ids = near_duplicate_groups(ck)
    test = split["test"]
    assert len(ids) == len(test) and sorted(set(ids.tolist())) == list(range(len(set(ids.tolist()))))
    for i, a in enumerate(test):  # same id exactly when the files are copies of one image
        for j, b in enumerate(test):
            assert (ids[i] == ids[j]) == (truth[a] == truth[b])
    assert len(set(ids.tolist())) < len(test)  # the seed puts copies into the test split
    split["n_groups"] += 1  # the data or the detection changed since training: refused, never guessed
    with pytest.raises(LandscapeError, match="differ from those of"):
        near_duplicate_groups(ck)


def test_a_split_without_copies_needs_no_data(monkeypatch):
    import landscape.data

    meta = {"split": {"test": ["a.png", "b.png", "c.png"], "n_duplicate_groups": 0}, "kind": "folder"}
    monkeypatch.setattr(landscape.data, "load_images", lambda *a, **k: pytest.fail("the data were read"))
    ids = near_duplicate_groups(SimpleNamespace(meta={"data": meta}, data_root="/nowhere"))
    assert ids.tolist() == [0, 1, 2]


def _run(tmp_path, optimizer, seed, evals, bacc, matched=None):
    from landscape.report.collect import Run

    meta = {"optimizer": {"name": optimizer, "hyper": {}, "lr": 0.001, "compute_matched": matched},
            "model": {"name": "cnn-tiny", "kwargs": {}}, "seed": seed, "train": {"epochs": 1},
            "data": {"source": "phantom", "split": {"hash": "h"}}, "gradient_evaluations": evals,
            "metrics": {"test": {"balanced_accuracy": bacc, "n": 10}, "train": {"balanced_accuracy": 0.9}}}
    return Run(tmp_path / f"{optimizer}{'-cm' if matched else ''}-s{seed}" / "final.pt", meta, "0" * 16)


def test_compare_shows_gradient_evaluations_and_what_the_baseline_is_matched_to(tmp_path):
    sam = {0: 340, 1: 360}  # SAM stopped at different epochs per seed
    crsam = {0: 510, 1: 540}
    runs = [_run(tmp_path, "sam", s, sam[s], 0.7) for s in (0, 1)]
    runs += [_run(tmp_path, "crsam", s, crsam[s], 0.72) for s in (0, 1)]
    runs += [_run(tmp_path, "adam", s, sam[s], 0.6 + s / 100,
                  {"matched_to": "sam", "matched_run": f"sam-s{s}", "gradient_budget": sam[s]}) for s in (0, 1)]
    runs.append(_run(tmp_path, "adam", 1, 170, 0.6))  # plain adam, seed 1 only
    out = compare_runs(runs, "adam-cm", uncertainty=False)
    compute = out["baseline_compute"]
    assert compute["matched_to"] == "sam" and "compute-matched to sam" in compute["text"]
    cells = {c["group"]: c for c in out["cells"] if c["target"] == "test_balanced_accuracy"}
    assert cells["sam"]["compute_ratio"] == 1.0 and cells["sam"]["budget_matched_pairs"] == 2
    assert cells["crsam"]["compute_ratio"] == pytest.approx((510 / 340 + 540 / 360) / 2)
    assert cells["crsam"]["budget_matched_pairs"] == 0 and cells["crsam"]["n_paired_runs"] == 2
    assert cells["adam"]["compute_ratio"] == pytest.approx(170 / 360) and cells["adam"]["n_paired_runs"] == 1
    assert [(p["gradient_evaluations"], p["baseline_gradient_evaluations"]) for p in cells["crsam"]["pairs"]] == \
        [(510, 340), (540, 360)]
    assert out["groups"]["crsam"] == {"n_runs": 2, "n_counted": 2, "gradient_evaluations_mean": 525.0,
                                      "gradient_evaluations_min": 510, "gradient_evaluations_max": 540,
                                      "matched_to": []}
    assert out["groups"]["adam-cm"]["matched_to"] == ["sam"]
    assert {r["run"]: r["gradient_evaluations"] for r in out["runs"]}["crsam-s1"] == 540
    plain = compare_runs(runs, "adam", uncertainty=False)
    compute = plain["baseline_compute"]
    assert compute["matched_to"] is None and "not compute-matched" in compute["text"]
    old = [_run(tmp_path, "sam", 0, None, 0.7), _run(tmp_path, "adam", 0, None, 0.6)]
    unknown = compare_runs(old, "adam", uncertainty=False)
    assert unknown["cells"][0]["compute_ratio"] is None and unknown["groups"]["sam"]["n_counted"] == 0
    fig = paired_figure(out)
    assert "compute-matched to sam" in fig.layout.title.text
    hover = " ".join(t for trace in fig.data for t in trace.text)
    assert "gradient evaluations 1.00x adam-cm&#x27;s (adam-cm matched to it in 2/2 pairs)" in hover
    assert "gradient evaluations 1.50x" in hover


def test_compare_cli_prints_the_compute_of_each_group(tiny_runs, tmp_path, cli):
    from landscape.checkpoint import read_payload
    from landscape.train import TrainConfig, train

    adam, sam = sorted(tiny_runs, key=lambda r: "sam" in r.name)
    evals = read_payload(sam / "final.pt")["gradient_evaluations"]
    cfg = TrainConfig(model="cnn-tiny", img_size=32, epochs=1, out=str(tmp_path / "cm"), optimizer="adam",
                      gradient_budget=evals, matched_to="sam", matched_run=str(sam))
    cm = train(cfg, progress=False).run_dir
    res = cli("compare", adam, sam, cm, "--baseline", "adam-cm", "--json", tmp_path / "c.json", "--n-boot", "50")
    assert res.code == 0, res.err
    text = " ".join(res.out.split())
    assert "difference from adam-cm (compute-matched to sam;" in text
    assert "compute: adam-cm is compute-matched to sam" in text
    assert f"│ sam │ 1 │ {evals} │ 1.00x │ 1/1 pairs │ - │" in text
    assert f"│ adam │ 1 │ {evals // 2} │ 0.50x │ 0/1 pairs │ - │" in text  # one pass a step, SAM two
    out = json.loads((tmp_path / "c.json").read_text())
    assert {r["run"]: r["gradient_evaluations"] for r in out["runs"]} == {adam.name: evals // 2, sam.name: evals,
                                                                        cm.name: evals}
    unc = out["runs"][0]["test_uncertainty"]
    assert unc["n_groups"] == unc["n_test"] and unc["ci_unit"].startswith("test images")  # the phantom: no copies


def test_the_report_plan_shows_the_training_compute(tiny_runs, tmp_path, capsys):
    from landscape.checkpoint import read_payload
    from landscape.report.collect import collect
    from landscape.report.costs import build_plan, print_plan

    run = tmp_path / tiny_runs[0].name
    shutil.copytree(tiny_runs[0], run, ignore=shutil.ignore_patterns("analysis"))
    evals = read_payload(run / "final.pt")["gradient_evaluations"]
    runs, _ = collect([run], compute=False, progress=False)
    rows = build_plan([(runs[0], ["measures"])], lambda ck, name: {"samples": 8, "ggn_samples": 8, "draws": 2,
                                                                   "depth": 2})
    assert [r["gradient_evaluations"] for r in rows] == [evals]
    print_plan(rows)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == f"training compute (gradient evaluations; ? = not recorded): {run.name} {evals}"


def test_runs_csv_carries_the_gradient_evaluations(tiny_runs):
    from landscape.checkpoint import read_payload
    from landscape.report.collect import collect
    from landscape.report.export import csv_text, tidy_rows

    runs, _ = collect(tiny_runs, compute=False, progress=False)
    rows = tidy_rows(runs)
    expected = [read_payload(r / "final.pt")["gradient_evaluations"] for r in tiny_runs]
    assert [r["gradient_evaluations"] for r in rows] == expected and expected[1] == 2 * expected[0]  # adam, sam
    header, *lines = csv_text(rows).splitlines()
    column = header.split(",").index("gradient_evaluations")
    assert [int(line.split(",")[column]) for line in lines] == expected
