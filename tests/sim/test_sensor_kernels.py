"""The compiled sensor kernels give bit for bit what the numpy they replaced gave: each reference
below is that numpy, kept as the specification (frames must not change: trained models and
datasets depend on them)."""
from __future__ import annotations

import numpy as np
import pytest

from sim.sensors.ground import GROUND_REFLECTIVITY, GROUND_SEMANTIC, RES
from sim.sensors.meshes import LABELLED_TYPES, MAT, place, type_mesh
from sim.sensors.rig import SensorRig
from sim.sensors.scene import FrameScene, _tables
from sim.sensors.specs import CameraSpec, LidarSpec
from sim.sensors.state import snapshot
from sim.sensors.static import LAMP_RES
from sim.sensors.weather import weather
from sim.world import World

JUNCTION = {
    "description": "a signalised junction with traffic and scenery",
    "map": {"type": "four_way", "control": "signal", "arm_length": 70},
    "duration_s": 6,
    "ego": {"start": {"lane": "S>J.0", "s": 20}, "goal": {"lane": "J>N.0", "s": 40}, "speed": 6},
    "traffic": {"vehicles": 6, "pedestrians": 4},
}


def to_world(scene, xv, yv):
    ex, ey = float(scene.ego_xy[0]), float(scene.ego_xy[1])
    return ex + scene.c * xv - scene.s * yv, ey + scene.s * xv + scene.c * yv


def texel_index(x0, y0, res, w, h, x, y):
    c = np.clip(((x - x0) * (1 / res)).astype(np.int32), 0, w - 1)
    r = np.clip(((y - y0) * (1 / res)).astype(np.int32), 0, h - 1)
    return r * w + c


def texels(scene, xv, yv):
    xw, yw = to_world(scene, xv, yv)
    tex = scene.static.texture
    texel = np.take(tex.packed, texel_index(tex.x0, tex.y0, RES, tex.width, tex.height, xw, yw))
    h, w = scene.static.lampmap.shape
    lamp = np.take(scene.static.lampmap.reshape(-1), texel_index(tex.x0, tex.y0, LAMP_RES, w, h, xw, yw))
    return texel.view(np.uint8).reshape(-1, 4), lamp


def camera_numpy(cam, scene, state):
    """The camera's shading as numpy did it: image and semantic."""
    spec, c = cam.spec, cam.calib
    w = weather(state.weather)
    dx, dy, o = cam.dx, cam.dy, cam.origin
    h = scene.cast(cam._rays, cam._ground_t)
    t, tri = h.t, h.tri
    rng_m = t * cam.norm
    amb, sun_rgb = np.asarray(w.ambient, dtype=np.float32), np.asarray(w.sun, dtype=np.float32)
    light = amb[:, None] + sun_rgb[:, None] * scene.lambert(o, scene.vector_to_vehicle(np.asarray(w.sun_dir)))
    col = np.take(scene.shaded(light), tri, axis=1)
    semantic = np.take(scene.semantic, tri)
    g = np.nonzero(h.ground)[0]
    night = w.headlights >= 0.5
    lamps = w.headlights > 0 and len(scene.static.lamps) > 0
    tg = t[g]
    texel, lamp = texels(scene, o[0] + tg * dx[g], o[1] + tg * dy[g])
    semantic[g] = GROUND_SEMANTIC[texel[:, 3]]
    g_alb = texel[:, :3].T * np.float32(1 / 255)
    g_light = light[:, -1:]
    if lamps:
        g_light = g_light + np.array([[1.0], [0.85], [0.6]], dtype=np.float32) * (0.55 * w.headlights * lamp)
    col[:, g] = g_alb * g_light
    idx = np.nonzero(np.take(scene.material, tri) == MAT["wall"])[0]
    ti = t[idx]
    px, py = to_world(scene, o[0] + ti * dx[idx], o[1] + ti * dy[idx])
    pz = o[2] + ti * cam.dz[idx]
    nx, ny = h.normal[idx, 0], h.normal[idx, 1]
    along = py * (scene.c * nx - scene.s * ny) - px * (scene.s * nx + scene.c * ny)
    fz = pz - np.floor(pz * (1 / 3.2)) * 3.2
    fa = along - np.floor(along * (1 / 3.0)) * 3.0
    win = (fz > 1.0) & (fz < 2.3) & (fa > 0.7) & (fa < 2.3)
    wi = idx[win]
    glass = np.array([[0.16], [0.2], [0.26]], dtype=np.float32) * np.take(light, tri[wi], axis=1)
    if state.weather in ("night", "dusk"):
        cell = (np.floor(pz[win] / 3.2) * 7919 + np.floor(along[win] / 3.0) * 104729).astype(np.int64)
        on = (cell * 2654435761 % 1000) < 220
        glass[:, on] += np.array([[0.9], [0.75], [0.45]], dtype=np.float32)
    col[:, wi] = glass
    if night:
        alb = np.take(scene.albedo, tri, axis=1)
        alb[:, g] = g_alb
        beam = np.where(h.ground, cam._beam_ground, cam._beam_mesh)
        col += alb * (beam * (w.headlights * 2.5) / (1 + (rng_m * (1 / 15)) ** 2))
    with np.errstate(invalid="ignore", over="ignore"):
        f = np.exp(-w.fog * rng_m) * np.clip(2.5 - rng_m * (1 / (0.4 * spec.max_depth)), 0, 1)
    sky = cam.sky(w)
    col = (col - sky) * f + sky
    if w.rain > 0:
        col += w.rain * 0.22 * cam._rain_layer()
    col *= np.float32(255 * w.contrast)
    col += np.float32(0.45 * 255 * (1 - w.contrast))
    noise = cam._noise(w)
    if noise is not None:
        off = int(cam.rng.integers(0, len(noise) - col.size))
        col += noise[off:off + col.size].reshape(3, -1)
    else:
        col += np.float32(0.5)
    np.clip(col, 0, 255, out=col)
    return col.T.astype(np.uint8).reshape(c.height, c.width, 3), semantic.reshape(c.height, c.width)


def lidar_numpy(lidar, scene, state):
    """The lidar as numpy did it: points, intensity, instance, semantic."""
    spec = lidar.spec
    w = weather(state.weather)
    dx, dy, dz = lidar._dir_rows
    o = lidar.origin
    h = scene.cast(lidar._rays, lidar._ground_t)
    r = h.t
    keep = (r < spec.max_range) & (r > spec.min_range)
    p_drop = spec.dropout + w.lidar_dropout
    if p_drop > 0 or w.lidar_fog > 0:
        u = lidar._slice(lidar._uniform, len(r))
        with np.errstate(over="ignore", invalid="ignore"):
            keep &= u >= p_drop + (1 - p_drop) * (1 - np.exp(-2 * w.lidar_fog * r))
    n = h.normal
    cos_in = np.abs(n[:, 0] * dx + n[:, 1] * dy + n[:, 2] * dz)
    idx = np.nonzero(keep)[0]
    r, tri, cos_in = r[idx], h.tri[idx], cos_in[idx]
    refl, sem, inst = np.take(scene.reflectivity, tri), np.take(scene.semantic, tri), np.take(scene.instance, tri)
    gsel = np.nonzero(h.ground[idx])[0]
    gi = idx[gsel]
    cls = texels(scene, o[0] + h.t[gi] * dx[gi], o[1] + h.t[gi] * dy[gi])[0][:, 3]
    refl[gsel], sem[gsel], cos_in[gsel] = GROUND_REFLECTIVITY[cls], GROUND_SEMANTIC[cls], -dz[gi]
    intensity = refl * (0.35 + 0.65 * cos_in)
    if w.lidar_fog > 0:
        intensity *= np.exp(-2 * w.lidar_fog * r)
    sigma = spec.range_noise_std * w.lidar_noise
    if sigma > 0 or spec.intensity_noise_std > 0:
        z = lidar._slice(lidar._normal, 2 * len(r))
        r = r + sigma * z[:len(r)]
        intensity = intensity + spec.intensity_noise_std * z[len(r):]
    points = np.take(lidar.dirs_sensor, idx, axis=0) * r[:, None]
    return points, np.clip(intensity, 0, 1), inst, sem


def actor_geometry_numpy(scene, state):
    """Actor vertices and normals in the vehicle frame, as numpy placed them."""
    a = state.actors
    near = np.hypot(a.x - state.ego.x, a.y - state.ego.y) < 150.0
    ax, ay, ayaw = scene.to_vehicle(a.x, a.y, a.yaw)
    verts, normals = [], []
    for k, kind in enumerate(LABELLED_TYPES[:4]):
        rows = np.nonzero(near & (a.kind == k))[0]
        if len(rows):
            verts.append(place(type_mesh(kind), ax[rows], ay[rows], ayaw[rows], a.scale[rows]).reshape(-1, 3))
            nm = _tables(kind).normals[None] / a.scale[rows][:, None, :]
            nm /= np.linalg.norm(nm, axis=2, keepdims=True)
            cy, sy = np.cos(ayaw[rows])[:, None], np.sin(ayaw[rows])[:, None]
            normals.append(np.stack([cy * nm[..., 0] - sy * nm[..., 1], sy * nm[..., 0] + cy * nm[..., 1], nm[..., 2]],
                                    axis=-1).reshape(-1, 3).astype(np.float32))
    return np.concatenate(verts), np.concatenate(normals)


@pytest.mark.parametrize("name", ["day", "dusk", "night", "fog", "rain"])
def test_camera_lidar_and_scene_kernels_match_numpy(make_scenario, name):
    world = World(make_scenario({**JUNCTION, "weather": name}), 2, ego_autopilot=True)
    specs = [CameraSpec(width=160, height=80), LidarSpec(channels=16, horizontal=512)]
    fast, ref = (SensorRig(specs, world.map, 2) for _ in range(2))  # same seeds: same noise draws
    walls = ground = 0
    for _ in range(3):
        for _ in range(10):
            world.step(world.autopilot_control())
        state = snapshot(world)
        scene = FrameScene(fast.static, state)
        cam = fast.sensors["camera"].capture(scene, state)
        image, semantic = camera_numpy(ref.sensors["camera"], scene, state)
        assert np.array_equal(cam.image, image) and np.array_equal(cam.semantic, semantic)
        lid = fast.sensors["lidar"].capture(scene, state)
        for got, want in zip((lid.points, lid.intensity, lid.instance, lid.semantic),
                             lidar_numpy(ref.sensors["lidar"], scene, state)):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        verts, normals = actor_geometry_numpy(scene, state)
        assert np.array_equal(scene.vertices[-len(verts):], verts)
        assert np.array_equal(scene.normals[-len(normals):], normals)
        h = scene.cast(fast.sensors["camera"]._rays)
        walls += int(scene.is_wall[h.tri].sum())
        ground += int(h.ground.sum())
    assert walls > 0 and ground > 0  # the windows and the ground texture were exercised
