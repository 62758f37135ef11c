import numpy as np
import pytest
import torch

from pixelseg.metrics import ConfusionMatrix, metrics_from_confusion


def test_textbook_worked_example():
    # rows = true class, columns = predicted
    metrics = metrics_from_confusion(np.array([[43, 5, 2], [2, 45, 3], [0, 1, 49]]))
    assert [round(100 * v, 2) for v in metrics["iou"]] == [82.69, 80.36, 89.09]
    assert round(100 * metrics["miou"], 2) == 84.05
    assert metrics["pixel_accuracy"] == pytest.approx(137 / 150)
    assert metrics["class_accuracy"] == pytest.approx([43 / 50, 45 / 50, 49 / 50])
    assert metrics["mean_class_accuracy"] == pytest.approx((43 + 45 + 49) / 150)
    # every class has 50 true pixels, so frequency-weighted IoU equals mIoU here
    assert metrics["fwiou"] == pytest.approx(metrics["miou"])
    assert metrics["dice"][0] == pytest.approx(2 * 43 / (50 + 45))


def labels_for(matrix: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    truth, predicted = [], []
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            truth += [i] * int(matrix[i, j])
            predicted += [j] * int(matrix[i, j])
    return torch.tensor(predicted), torch.tensor(truth)


def test_accumulates_textbook_example_from_pixels_in_batches():
    matrix = np.array([[43, 5, 2], [2, 45, 3], [0, 1, 49]])
    predicted, truth = labels_for(matrix)
    order = torch.randperm(len(truth), generator=torch.Generator().manual_seed(0))
    confusion = ConfusionMatrix(3)
    for chunk in torch.split(order, 17):
        confusion.update(predicted[chunk], truth[chunk])
    assert confusion.matrix.tolist() == matrix.tolist()
    assert round(100 * confusion.compute()["miou"], 2) == 84.05


def test_ignore_index_and_logits():
    labels = torch.tensor([[0, 1, 255], [1, 1, 255]])
    logits = torch.zeros(1, 2, 2, 3)
    logits[0, 1] = 1.0  # predicts class 1 everywhere
    confusion = ConfusionMatrix(2)
    confusion.update(logits, labels.unsqueeze(0))
    assert confusion.matrix.tolist() == [[0, 1], [0, 3]]


def test_absent_class_is_left_out_of_the_means():
    metrics = metrics_from_confusion(np.array([[5, 0, 0], [0, 5, 0], [0, 0, 0]]))
    assert np.isnan(metrics["iou"][2])
    assert metrics["miou"] == 1.0


def test_frequency_weighted_iou_against_definition():
    rng = np.random.default_rng(1)
    matrix = rng.integers(0, 50, (5, 5))
    metrics = metrics_from_confusion(matrix)
    tp = np.diag(matrix)
    iou = tp / (matrix.sum(0) + matrix.sum(1) - tp)
    assert metrics["fwiou"] == pytest.approx((matrix.sum(1) / matrix.sum() * iou).sum())


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        ConfusionMatrix(2).update(torch.zeros(2, 3), torch.zeros(3, 2))


def _reference_confusion(predictions: np.ndarray, labels: np.ndarray, n: int, ignore_index: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    for label, prediction in zip(labels.ravel().tolist(), predictions.ravel().tolist(), strict=True):
        if 0 <= label < n and label != ignore_index:
            matrix[label, prediction] += 1
    return matrix


@pytest.mark.parametrize(("dtype", "n", "ignore_index"), [
    (torch.uint8, 19, 255), (torch.int16, 19, -1), (torch.int32, 7, 0), (torch.int64, 19, 255),
    (torch.int64, 200, 255),  # 200 x 201 codes do not fit 16 bits: the 64-bit path
])
def test_fast_accumulation_equals_a_pixel_by_pixel_count(dtype, n, ignore_index):
    generator = torch.Generator().manual_seed(n)
    predictions = torch.randint(0, n, (2, 30, 40), generator=generator)
    labels = torch.randint(0, n, (2, 30, 40), generator=generator)
    labels[0, :5] = ignore_index
    labels[1, :3] = n + 3  # outside the classes and not the ignore index: not counted
    if dtype != torch.uint8:
        labels[1, 3:5] = -7
    if dtype == torch.int64:
        labels[1, 5, :4] = 70000  # would wrap around in 16 bits
    labels = labels.to(dtype)
    kept = labels.clone()
    matrix = ConfusionMatrix(n, ignore_index)
    matrix.update(predictions.to(dtype if dtype != torch.uint8 or n < 256 else torch.int64), labels)
    expected = _reference_confusion(predictions.numpy(), labels.to(torch.int64).numpy(), n, ignore_index)
    assert np.array_equal(matrix.matrix.numpy(), expected)
    assert torch.equal(labels, kept), "the caller's labels were modified"


def test_predictions_outside_the_classes_are_an_error():
    with pytest.raises(ValueError, match="class 5, outside 0..4"):
        ConfusionMatrix(5).update(torch.tensor([[0, 5]]), torch.tensor([[0, 1]]))


def test_precision_and_recall_from_the_confusion_matrix():
    from pixelseg.metrics import metrics_from_confusion

    # rows = truth, columns = prediction: class 1 has 4 true pixels, 3 found; 5 predicted, 3 of them right
    matrix = np.array([[10, 2, 0], [1, 3, 0], [0, 0, 0]])
    metrics = metrics_from_confusion(matrix)
    assert metrics["recall"][1] == pytest.approx(3 / 4) and metrics["precision"][1] == pytest.approx(3 / 5)
    assert metrics["dice"][1] == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))  # Dice is F1
    assert np.isnan(metrics["precision"][2])  # neither labelled nor predicted
    assert metrics_from_confusion(np.array([[5, 0], [3, 0]]))["precision"][1] == 0.0  # present, never predicted


def test_boundary_f1_known_answers():
    from pixelseg.metrics import BoundaryF1, boundary_f1

    label = np.zeros((100, 100), dtype=np.int64)
    label[20:80, 20:80] = 1
    assert boundary_f1(label, label, 2)[1] == (1.0, 1.0, 1.0)
    shifted = np.roll(label, 1, axis=1)  # one pixel off: within the 0.75 % x 141 = 1.06 pixel tolerance
    assert boundary_f1(shifted, label, 2)[1][2] == pytest.approx(1.0)
    far = np.roll(label, 10, axis=1)  # ten pixels off: only the horizontal edges' overlap still matches
    precision, recall, f1 = boundary_f1(far, label, 2)[1]
    assert 0.3 < precision < 0.7 and 0.3 < recall < 0.7 and f1 == pytest.approx(2 * precision * recall /
                                                                                 (precision + recall))
    assert boundary_f1(np.zeros_like(label), label, 2)[1] == (0.0, 0.0, 0.0)  # the square missed entirely
    ignored, spurious = label.copy(), label.copy()
    ignored[85:, 85:] = 255  # an unlabelled corner, where the prediction has a blob: not scored
    spurious[88:96, 88:96] = 1
    assert boundary_f1(spurious, ignored, 2, classes=[1])[1][2] == pytest.approx(1.0)
    assert boundary_f1(spurious, label, 2, classes=[1])[1][0] < 1.0  # where it is labelled, the blob is an error
    banded = label.copy()
    banded[19:21, 18:82] = 255  # a VOC-style unlabelled band on the square's top edge (within the tolerance)
    assert boundary_f1(label, banded, 2, classes=[1])[1][2] > 0.95
    score = BoundaryF1(2)
    score.update(label, label)
    score.update(np.zeros_like(label), label)
    assert score.compute()["boundary_f1"] == pytest.approx(0.5)
