"""The benchmark's AP breakdowns, on hand-made detections."""
from __future__ import annotations

import pytest

from perception.detector import Detection
from perception.evaluate import breakdown, map50_95, match


def _row(gts: list[tuple], dets: list[Detection]) -> dict:
    meta = {"weather": "day", "boxes": [{"cls": c, "xyxy": list(b), "depth": z, "center": [z, 0.0, 0.5]}
                                          for c, b, z in gts]}
    return {"meta": meta, "dets": dets, "match": match(dets, meta["boxes"]), "ms": 1.0, "lifted": [None] * len(dets)}


def test_ap_by_box_height_scores_each_size_on_its_own():
    """A tiny car missed and a big one found: the small bin scores 0, the large 1, the whole between."""
    small, big = (100.0, 70.0, 108.0, 76.0), (40.0, 60.0, 100.0, 110.0)  # 6 px and 50 px tall
    rows = [_row([("car", small, 50.0), ("car", big, 8.0)], [Detection("car", 0.9, *big)])]
    b = breakdown(rows)
    assert b["by_height"]["0-8px"]["per_class_ap50"]["car"] == pytest.approx(0.0)
    assert b["by_height"]["16+px"]["per_class_ap50"]["car"] == pytest.approx(1.0)
    assert b["by_height"]["8-16px"]["per_class_ap50"]["car"] is None  # no car of that size
    assert 0.0 < b["overall"]["per_class_ap50"]["car"] < 1.0
    # a false box of a size counts against that size only
    rows = [_row([("car", big, 8.0)], [Detection("car", 0.9, *big), Detection("car", 0.95, 200.0, 70.0, 206.0, 75.0)])]
    b = breakdown(rows)
    assert b["by_height"]["16+px"]["per_class_ap50"]["car"] == pytest.approx(1.0)
    assert b["overall"]["per_class_ap50"]["car"] < 1.0


def test_ap_of_boxes_cut_by_the_image_side_is_scored_apart():
    """A car cut by the image's side missed, a whole one found: the cut bin scores 0, the whole 1."""
    cut, whole = (0.0, 60.0, 70.0, 120.0), (140.0, 65.0, 180.0, 95.0)
    rows = [_row([("car", cut, 4.0), ("car", whole, 12.0)], [Detection("car", 0.9, *whole)])]
    b = breakdown(rows)
    assert b["by_side"]["cut"]["per_class_ap50"]["car"] == pytest.approx(0.0)
    assert b["by_side"]["whole"]["per_class_ap50"]["car"] == pytest.approx(1.0)
    rows = [_row([("car", cut, 4.0)], [Detection("car", 0.9, *cut)])]
    assert breakdown(rows)["by_side"]["cut"]["per_class_ap50"]["car"] == pytest.approx(1.0)


def test_map50_95_averages_the_ap_over_iou_thresholds_half_to_0_95():
    """A car box of IoU 0.72 is a hit at 0.50–0.70 and a miss from 0.75: AP 1 at five of the ten
    thresholds; an exact walker box hits at all ten."""
    gt = (0.0, 0.0, 100.0, 100.0)
    car = Detection("car", 0.9, 0.0, 0.0, 100.0, 72.0)
    assert map50_95([_row([("car", gt, 10.0)], [car])]) == pytest.approx(0.5)
    walker = Detection("pedestrian", 0.8, 200.0, 0.0, 220.0, 40.0)
    rows = [_row([("car", gt, 10.0), ("pedestrian", (200.0, 0.0, 220.0, 40.0), 12.0)], [car, walker])]
    assert map50_95(rows) == pytest.approx((5 * 1.0 + 5 * 0.5) / 10)
