import numpy as np
import pytest
import torch

from landscape.metrics import classification_metrics, expected_calibration_error, softmax

CLASSES = ["benign", "malignant", "normal"]


def test_perfect_predictions():
    labels = np.array([0, 1, 2, 0, 1, 2])
    logits = np.eye(3)[labels] * 20.0
    m = classification_metrics(logits, labels, CLASSES)
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert m["auroc_macro"] == pytest.approx(1.0) and m["auroc_malignant"] == pytest.approx(1.0)
    assert m["nll"] == pytest.approx(-np.log(softmax(logits)[0, 0]), rel=1e-9)
    assert m["per_class_recall"] == {"benign": 1.0, "malignant": 1.0, "normal": 1.0}


def test_majority_class_balanced_accuracy_is_one_third():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    logits = np.tile([5.0, 0.0, 0.0], (10, 1))
    m = classification_metrics(torch.tensor(logits), torch.tensor(labels), CLASSES)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["balanced_accuracy"] == pytest.approx(1 / 3)
    assert m["per_class_recall"]["malignant"] == 0.0


def test_ece_by_hand():
    # bin of confidence 0.95: two samples, both right -> |1 - 0.95|
    # bin of confidence 0.55: two samples, both right -> |1 - 0.55|
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(0.5 * 0.05 + 0.5 * 0.45)
    # one wrong prediction at confidence 0.95 -> that bin's accuracy drops to 1/2
    labels_wrong = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, labels_wrong, n_bins=15) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)


def test_auroc_undefined_when_a_class_is_missing():
    labels = np.array([0, 0, 2, 2])
    logits = np.random.default_rng(0).normal(size=(4, 3))
    m = classification_metrics(logits, labels, CLASSES)
    assert m["auroc_macro"] is None and m["auroc_malignant"] is None
