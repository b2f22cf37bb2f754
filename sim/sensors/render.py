"""Pictures of sensor frames for people: camera with labels, depth, masks, lidar and radar from
above, and the fused overlay. Each function returns an H×W×3 uint8 image (PIL draws, numpy fills).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sim.sensors.calibration import lidar_to_camera, radar_to_camera, transform
from sim.sensors.frames import SEMANTIC_CLASSES, SEMANTIC_COLOURS, CameraFrame, LidarFrame, RadarFrame

BOX_COLOURS = {"car": (0, 170, 255), "pedestrian": (255, 40, 200), "stop_sign": (255, 255, 255),
               "traffic_light_red": (255, 40, 40), "traffic_light_yellow": (255, 210, 0),
               "traffic_light_green": (40, 255, 90)}
SHORT = {"car": "car", "pedestrian": "ped", "stop_sign": "stop", "traffic_light_red": "TL red",
         "traffic_light_yellow": "TL yel", "traffic_light_green": "TL grn"}


def _font(size: int = 11):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _cmap(name: str, x: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.clip(x, 0, 1))[..., :3] * 255).astype(np.uint8)


def camera_boxes(frame: CameraFrame, scale: int = 3) -> np.ndarray:
    """The camera image, enlarged, with every 2D label: class, track id, visible %, truncation."""
    img = Image.fromarray(frame.image).resize((frame.image.shape[1] * scale, frame.image.shape[0] * scale),
                                              Image.NEAREST)
    d = ImageDraw.Draw(img)
    font = _font(10 + scale)
    for b in frame.boxes:
        col = BOX_COLOURS[b.cls]
        d.rectangle([b.x1 * scale, b.y1 * scale, b.x2 * scale - 1, b.y2 * scale - 1], outline=col, width=2)
        text = f"{SHORT[b.cls]} #{b.track_id} {b.visible_fraction:.0%}" + (f" t{b.truncation:.0%}" if b.truncation > 0.05 else "")
        x, y = b.x1 * scale, max(b.y1 * scale - 14 - scale, 0)
        tw = d.textlength(text, font=font)
        d.rectangle([x, y, x + tw + 4, y + 12 + scale], fill=(0, 0, 0))
        d.text((x + 2, y), text, fill=col, font=font)
    d.text((6, 4), f"{frame.name}  t={frame.t:.1f}s  {frame.weather}  {len(frame.boxes)} labels", fill=(255, 255, 255),
           font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(img)


def _enlarge(img: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def depth_image(frame: CameraFrame, max_depth: float = 120.0, scale: int = 2) -> np.ndarray:
    """Depth, log-scaled (near: red, far: blue; sky black), with a scale bar."""
    d = frame.depth
    x = np.log1p(np.where(np.isfinite(d), d, max_depth)) / np.log1p(max_depth)
    out = _cmap("turbo", 1 - x)
    out[~np.isfinite(d)] = 0
    img = Image.fromarray(_enlarge(out, scale))
    dr = ImageDraw.Draw(img)
    for i, m in enumerate((2, 5, 10, 20, 50, 100)):
        col = tuple(int(q) for q in _cmap("turbo", np.array([1 - np.log1p(m) / np.log1p(max_depth)]))[0])
        dr.rectangle([6 + 52 * i, 6, 16 + 52 * i, 16], fill=col)
        dr.text((19 + 52 * i, 5), f"{m} m", fill=(255, 255, 255), font=_font(11), stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(img)


def semantic_image(frame: CameraFrame, instances: bool = False, scale: int = 2) -> np.ndarray:
    """Semantic classes (Cityscapes-like colours); with `instances`, a colour per actor on top."""
    out = SEMANTIC_COLOURS[frame.semantic].copy()
    if instances:
        ids = frame.instance
        m = ids >= 0
        h = (ids[m].astype(np.int64) * 2654435761) % 2**24
        out[m] = np.stack([h & 255, (h >> 8) & 255, (h >> 16) & 255], axis=1).astype(np.uint8) // 2 + 100
    return _enlarge(out, scale)


def legend(width: int) -> np.ndarray:
    """Strips naming the semantic colours (wrapping to fit `width`)."""
    img = Image.new("RGB", (width, 36), (0, 0, 0))
    d = ImageDraw.Draw(img)
    x, y = 4, 4
    for name, col in zip(SEMANTIC_CLASSES, SEMANTIC_COLOURS):
        w = 18 + int(d.textlength(name, font=_font(11)))
        if x + w > width:
            x, y = 4, y + 16
        d.rectangle([x, y, x + 10, y + 10], fill=tuple(int(c) for c in col))
        d.text((x + 13, y - 1), name, fill=(255, 255, 255), font=_font(11))
        x += w
    return np.asarray(img)


def _bev_canvas(size: int, extent: float):
    img = Image.new("RGB", (size, size), (12, 12, 16))
    d = ImageDraw.Draw(img)
    k = size / (2 * extent)
    c = size / 2
    for r in range(10, int(extent * 1.5), 10):
        d.ellipse([c - r * k, c - r * k, c + r * k, c + r * k], outline=(40, 40, 48))
        d.text((c + 2, c - r * k), f"{r} m", fill=(80, 80, 90), font=_font(10))
    return img, d, k, c


def _to_px(xy: np.ndarray, k: float, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Vehicle frame (x forward = up, y left = left) → BEV pixels."""
    return c - xy[:, 1] * k, c - xy[:, 0] * k


def _ego(d: ImageDraw.ImageDraw, k: float, c: float, length: float = 4.6, width: float = 1.9) -> None:
    d.rectangle([c - width / 2 * k, c - length / 2 * k, c + width / 2 * k, c + length / 2 * k], outline=(255, 255, 255),
                width=2)


def lidar_bev(frame: LidarFrame, size: int = 640, extent: float = 50.0) -> np.ndarray:
    """Lidar points from above, coloured by semantic class; forward is up."""
    img, d, k, c = _bev_canvas(size, extent)
    arr = np.asarray(img).copy()
    p = transform(frame.calib.T_vehicle_lidar, frame.points)
    order = np.argsort(p[:, 2])  # draw high points last
    u, v = _to_px(p[order, :2], k, c)
    ok = (u >= 0) & (u < size - 1) & (v >= 0) & (v < size - 1)
    col = (60 + SEMANTIC_COLOURS[frame.semantic[order]] * 0.77).astype(np.uint8)  # lifted off the dark ground
    for du in (0, 1):
        arr[v[ok].astype(int), u[ok].astype(int) + du] = col[ok]
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    _ego(d, k, c)
    present = sorted(set(frame.semantic.tolist()))
    y = 6
    for s in present:
        d.rectangle([6, y, 16, y + 10], fill=tuple(int(q) for q in SEMANTIC_COLOURS[s]))
        d.text((20, y - 1), SEMANTIC_CLASSES[s], fill=(230, 230, 230), font=_font(11))
        y += 14
    d.text((size - 200, 6), f"{frame.name}  t={frame.t:.1f}s  {len(frame)} pts", fill=(230, 230, 230), font=_font(11))
    return np.asarray(img)


def radar_bev(frame: RadarFrame, lidar: LidarFrame | None = None, size: int = 640, extent: float = 80.0) -> np.ndarray:
    """Radar returns from above (forward is up): colour = range rate (blue closing, red opening),
    size = RCS, a ring around returns from labelled actors; lidar in grey behind."""
    img, d, k, c = _bev_canvas(size, extent)
    if lidar is not None:
        arr = np.asarray(img).copy()
        p = transform(lidar.calib.T_vehicle_lidar, lidar.points)
        p = p[p[:, 2] > 0.3]
        u, v = _to_px(p[:, :2], k, c)
        ok = (u >= 0) & (u < size) & (v >= 0) & (v < size)
        arr[v[ok].astype(int), u[ok].astype(int)] = (70, 70, 78)
        img = Image.fromarray(arr)
        d = ImageDraw.Draw(img)
    cal = frame.calib
    o = cal.T_vehicle_radar[:3, 3]
    yaw0 = np.arctan2(cal.T_vehicle_radar[1, 0], cal.T_vehicle_radar[0, 0])
    for a in (-cal.fov, cal.fov):
        end = o[:2] + cal.max_range * np.array([np.cos(yaw0 + a), np.sin(yaw0 + a)])
        u, v = _to_px(np.array([o[:2], end]), k, c)
        d.line([u[0], v[0], u[1], v[1]], fill=(60, 60, 90), width=1)
    _ego(d, k, c)
    xy = transform(cal.T_vehicle_radar, np.column_stack([frame.xy, np.zeros(len(frame))]))[:, :2]
    u, v = _to_px(xy, k, c)
    col = _cmap("coolwarm", 0.5 + np.asarray(frame.range_rate) / 20.0)
    font = _font(10)
    for i in range(len(frame)):
        r = 2 + np.clip((frame.rcs[i] + 10) / 5, 0, 5)
        d.ellipse([u[i] - r, v[i] - r, u[i] + r, v[i] + r], fill=tuple(int(q) for q in col[i]))
        if frame.instance[i] >= 0:
            d.ellipse([u[i] - r - 2, v[i] - r - 2, u[i] + r + 2, v[i] + r + 2], outline=(255, 255, 255))
            d.text((u[i] + r + 3, v[i] - 6), f"#{frame.instance[i]} {frame.range_rate[i]:+.1f}", fill=(220, 220, 220),
                   font=font)
    d.text((6, 6), f"{frame.name}  t={frame.t:.1f}s  {len(frame)} returns  (range rate m/s; blue: closing)",
           fill=(230, 230, 230), font=_font(11))
    return np.asarray(img)


def fusion_overlay(cam: CameraFrame, lidar: LidarFrame | None, radar: RadarFrame | None, scale: int = 3) -> np.ndarray:
    """The camera with lidar points (coloured by depth) and radar pillars projected into it."""
    img = Image.fromarray(cam.image).resize((cam.image.shape[1] * scale, cam.image.shape[0] * scale), Image.NEAREST)
    arr = (np.asarray(img) * 0.6).astype(np.uint8)
    if lidar is not None:
        proj = lidar_to_camera(lidar.points, lidar.calib, cam.calib)
        col = _cmap("turbo", 1 - np.log1p(proj.depth) / np.log1p(80.0))
        u = (proj.uv[:, 0] * scale).astype(int)
        v = (proj.uv[:, 1] * scale).astype(int)
        arr[v, u] = col
        arr[np.minimum(v + 1, arr.shape[0] - 1), u] = col
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    if radar is not None and len(radar):
        u, vt, vb = radar_to_camera(radar.range, radar.azimuth, radar.calib, cam.calib)
        col = _cmap("coolwarm", 0.5 + np.asarray(radar.range_rate) / 20.0)
        for i in np.nonzero(np.isfinite(u))[0]:
            d.line([u[i] * scale, vt[i] * scale, u[i] * scale, vb[i] * scale], fill=tuple(int(q) for q in col[i]),
                   width=3)
    d.text((6, 4), "lidar (colour: depth) and radar pillars (colour: range rate) in the camera", fill=(255, 255, 255),
           font=_font(13), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(img)
