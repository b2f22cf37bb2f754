"""The detector wrapper: its output, whatever head made it, has one box per object."""
from __future__ import annotations

import numpy as np

from perception.detector import Detector


def test_near_duplicate_boxes_of_one_class_are_merged(monkeypatch):
    import torch

    from perception.yolo import ultralytics

    det = Detector()
    rows = [[100, 50, 140, 80, 0.60, 0],  # a car …
            [104, 52, 142, 80, 0.15, 0],  # … and a near-duplicate of it (IoU 0.80), as YOLO26 heads give
            [101, 50, 140, 80, 0.40, 1],  # another class on the same pixels stays
            [200, 40, 210, 60, 0.30, 0]]  # a second car stays

    def predict(x, **kw):
        return [ultralytics().engine.results.Results(np.zeros((160, 320, 3), np.uint8), "", det.model.names,
                                                     boxes=torch.tensor(rows, dtype=torch.float32))]

    monkeypatch.setattr(det.model, "predict", predict)
    out = det(np.zeros((160, 320, 5), np.uint8))
    assert [(d.cls, round(d.score, 2), d.x1) for d in out] == [("car", 0.6, 100.0), ("pedestrian", 0.4, 101.0),
                                                               ("car", 0.3, 200.0)]

