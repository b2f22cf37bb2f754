"""The benchmark's AP breakdowns, on hand-made detections."""
from __future__ import annotations

import numpy as np
import pytest

from perception.detector import Detection
from perception.evaluate import _ap_table, _weighted_ap, average_precision, bootstrap_scores, breakdown, map50_95, match


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


def test_a_weighted_draw_scores_as_the_frames_it_drew():
    """Each frame drawn once is the split itself; drawn twice or not at all, the same as a list of
    frames repeated or left out."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 12, 80)
    score, tp = rng.permutation(80) / 80.0, rng.random(80) < 0.6  # distinct scores
    n_gt = np.bincount(frame[tp], minlength=12) + rng.integers(0, 2, 12)  # some boxes never found
    order = np.argsort(-score, kind="stable")
    counts = np.vstack([np.ones(12, int), rng.integers(0, 3, 12)])
    got = _weighted_ap(tp[order], frame[order], counts, n_gt)
    assert got[0] == average_precision(score, tp, int(n_gt.sum()))
    pick = np.concatenate([np.flatnonzero(frame == f) for f in range(12) for _ in range(counts[1, f])])
    assert got[1] == pytest.approx(average_precision(score[pick], tp[pick], int(counts[1] @ n_gt)), abs=1e-12)


def test_the_bootstrap_interval_is_wide_for_a_class_with_few_boxes():
    """Cars: 40 frames each with a car found and a false box scoring above it in one frame in four.
    Stop signs: 2 boxes, one found. The cars' interval holds their AP and is narrower; the same
    seed gives the same interval, another seed another."""
    car, sign = (40.0, 60.0, 100.0, 110.0), (200.0, 40.0, 210.0, 50.0)
    false = Detection("car", 0.95, 150.0, 60.0, 170.0, 80.0)
    rows = [_row([("car", car, 8.0)], [Detection("car", 0.9, *car)] + ([false] if i % 4 == 0 else []))
            for i in range(40)]
    rows[0] = _row([("car", car, 8.0), ("stop_sign", sign, 20.0)], rows[0]["dets"] + [Detection("stop_sign", 0.8, *sign)])
    rows[1] = _row([("car", car, 8.0), ("stop_sign", sign, 20.0)], rows[1]["dets"])
    ci = bootstrap_scores([rows], resamples=400)[0]
    ap = _ap_table(rows)
    assert ci["boxes"]["car"] == 40 and ci["boxes"]["stop_sign"] == 2 and ci["boxes"]["pedestrian"] == 0
    lo, hi = ci["per_class_ap50"]["car"]
    assert lo < ap["car"] < hi < 1.0
    slo, shi = ci["per_class_ap50"]["stop_sign"]
    assert shi - slo > 2 * (hi - lo) and ci["per_class_ap50"]["pedestrian"] is None
    assert ci["map50"][0] < (ap["car"] + ap["stop_sign"]) / 2 < ci["map50"][1]
    assert bootstrap_scores([rows], resamples=400)[0] == ci and bootstrap_scores([rows], resamples=400, seed=1)[0] != ci
    assert "against_first" not in ci


def test_a_paired_comparison_sees_a_detector_that_finds_more():
    """B finds every car; A misses one in three. On the same draws B is higher in every draw that
    has a missed car; the same pass against itself differs by nothing; other frames are refused."""
    car = (40.0, 60.0, 100.0, 110.0)

    def named(i, dets):
        r = _row([("car", car, 8.0)], dets)
        r["meta"]["name"] = f"f{i}"
        return r

    a = [named(i, [] if i % 3 == 0 else [Detection("car", 0.9, *car)]) for i in range(30)]
    b = [named(i, [Detection("car", 0.9, *car)]) for i in range(30)]
    first, second = bootstrap_scores([a, b], resamples=300)
    d = second["against_first"]
    assert first == bootstrap_scores([a], resamples=300)[0]  # the first pass: its own intervals, no pair
    assert d["car"]["diff"] == pytest.approx(1.0 - _ap_table(a)["car"], abs=1e-4) and d["car"]["diff"] > 0.3
    assert d["car"]["ci90"][0] > 0 and d["car"]["p_higher"] == 1.0
    assert d["map50"]["diff"] == pytest.approx(d["car"]["diff"], abs=1e-4) and d["pedestrian"] is None
    same = bootstrap_scores([a, a], resamples=300)[1]["against_first"]
    assert same["car"] == {"diff": 0.0, "ci90": [0.0, 0.0], "p_higher": 0.0}
    with pytest.raises(ValueError, match="different frames"):
        bootstrap_scores([a, b[::-1]])
