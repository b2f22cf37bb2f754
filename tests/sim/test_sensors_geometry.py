"""Sensor geometry, checked against numbers worked out by hand: projection, range, range rate,
occlusion and traffic-light state. Noise is off unless a test says otherwise."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sim.map import Lane, Prop, RoadMap
from sim.map_builders import four_way
from sim.sensors.calibration import Mount, lidar_to_camera, radar_to_camera
from sim.sensors.camera import Camera
from sim.sensors.frames import SEM
from sim.sensors.lidar import Lidar
from sim.sensors.meshes import car_mesh
from sim.sensors.radar import Radar
from sim.sensors.rig import sensor_rng
from sim.sensors.scene import FrameScene
from sim.sensors.specs import CameraSpec, LidarSpec, RadarSpec
from sim.sensors.state import LIGHT_CODE, Actors, EgoMotion, SceneState
from sim.sensors.static import static_world
from sim.types import LightState

LEVEL_CAMERA = CameraSpec(mount=Mount(x=1.0, z=1.5, pitch_deg=0.0)).noiseless()  # fx = fy = 160, cx = 160, cy = 80


def empty_map(buildings=()) -> RoadMap:
    """One lane far to the south (its scenery stays away), and the buildings given; the area
    around the origin is empty grass where the tests place things."""
    x = np.linspace(-60.0, 60.0, 121)
    lane = Lane("far.0", np.column_stack([x, np.full_like(x, -150.0)]), width=3.5, speed_limit=10.0)
    return RoadMap([lane], buildings=[np.asarray(b, dtype=float) for b in buildings], name="sensor_test")


def cars(*rows) -> Actors:
    """rows of (id, x, y, yaw, length, width, vx, vy)."""
    r = np.array(rows, dtype=float).reshape(-1, 8)
    return Actors.make(vehicles=dict(id=r[:, 0], x=r[:, 1], y=r[:, 2], yaw=r[:, 3], length=r[:, 4], width=r[:, 5],
                                     vx=r[:, 6], vy=r[:, 7], colour=np.full((len(r), 3), 0.7)))


def capture(road_map, state, *sensors):
    scene = FrameScene(static_world(road_map), state)
    return [s.capture(scene, state) for s in sensors]


def test_box_at_a_known_pose_projects_to_the_expected_pixel_box():
    """A 4.6 × 1.9 m sedan 25 m ahead, seen from behind by a level camera 1 m ahead of the ego's
    centre at 1.5 m: its rear face is 25 − 2.3 − 1 = 21.7 m away, so its sides are at
    u = 160 ± 160 · 0.95 / 21.7 = 160 ± 7.005 px."""
    m = empty_map()
    state = SceneState.build(m, EgoMotion(0.0, 0.0, 0.0), cars((7, 25.0, 0.0, 0.0, 4.6, 1.9, 0, 0)))
    (frame,) = capture(m, state, Camera(LEVEL_CAMERA, sensor_rng(0, "camera")))
    (box,) = frame.boxes
    assert (box.cls, box.track_id, box.truncation, box.visible_fraction) == ("car", 7, 0.0, pytest.approx(1.0, abs=0.03))
    assert box.x1 == pytest.approx(160 - 7.005, abs=0.01)
    assert box.x2 == pytest.approx(160 + 7.005, abs=0.01)
    # top and bottom: every mesh vertex through a pinhole written out here (x fwd → z_cam, y left → −u)
    v = car_mesh("sedan").vertices.astype(float) * [4.6, 1.9, 1.0] + [25.0, 0.0, 0.0]
    depth = v[:, 0] - 1.0
    assert box.y1 == pytest.approx((80 + 160 * (1.5 - v[:, 2]) / depth).min(), abs=1e-3)
    assert box.y2 == pytest.approx((80 + 160 * (1.5 - v[:, 2]) / depth).max(), abs=1e-3)
    # the ray-cast instance mask fills exactly that box
    rows, cols = np.nonzero(frame.instance == 7)
    assert (cols.min(), cols.max() + 1) == (int(np.floor(box.x1 + 0.5)), int(np.floor(box.x2 + 0.5)))
    assert abs(rows.min() - box.y1) < 1.0 and abs(rows.max() + 1 - box.y2) < 1.0
    assert box.depth == pytest.approx(25.0 - 1.0, abs=1e-6)
    assert box.center[:2] == pytest.approx((25.0, 0.0), abs=1e-6)
    # the rear face, between the tail lights: ray through pixel (86, 160) meets it at z ≈ 0.62 m
    assert frame.depth[86, 160] == pytest.approx(21.7, abs=1e-3)


def test_truncated_box_is_clipped_and_reports_truncation():
    m = empty_map()
    # 12 m ahead, 9.5 m to the left: the car straddles the image's left edge (45° off the axis)
    state = SceneState.build(m, EgoMotion(0.0, 0.0, 0.0), cars((3, 13.0, 9.5, 0.0, 4.6, 1.9, 0, 0)))
    (frame,) = capture(m, state, Camera(LEVEL_CAMERA, sensor_rng(0, "camera")))
    (box,) = frame.boxes
    assert box.x1 == 0.0 and 0.0 < box.truncation < 1.0
    assert box.visible_fraction == pytest.approx(1.0, abs=0.05)


def test_lidar_return_from_a_wall_has_the_right_range():
    """A wall 30 m ahead of the lidar (x = 30 in the world; the lidar sits above the ego's centre)."""
    m = empty_map(buildings=[[[30, -20], [40, -20], [40, 20], [30, 20]]])
    state = SceneState.build(m, EgoMotion(0.0, 0.0, 0.0))
    exact, noisy = (Lidar(spec, sensor_rng(1, "lidar")) for spec in (LidarSpec().noiseless(), LidarSpec()))
    f0, f1 = capture(m, state, exact, noisy)
    for f in (f0, f1):
        wall = (f.semantic == SEM["building"]) & (np.abs(f.points[:, 1]) < 10)
        assert wall.sum() > 100
    wall = (f0.semantic == SEM["building"]) & (np.abs(f0.points[:, 1]) < 10)
    p = f0.points[wall]
    assert np.abs(p[:, 0] - 30.0).max() < 2e-3  # x of every wall point, exactly
    rng = np.linalg.norm(p, axis=1)
    el, az = np.arcsin(p[:, 2] / rng), np.arctan2(p[:, 1], p[:, 0])
    assert rng == pytest.approx(30.0 / (np.cos(el) * np.cos(az)), abs=2e-3)
    # with noise: unbiased, about the configured 2 cm, some points dropped
    wall = (f1.semantic == SEM["building"]) & (np.abs(f1.points[:, 1]) < 10)
    p = f1.points[wall]
    r = np.linalg.norm(p, axis=1)
    err = r - 30.0 * r / p[:, 0]  # range error along each ray
    assert abs(err.mean()) < 0.005 and 0.01 < err.std() < 0.03 and np.abs(err).max() < 0.12
    assert len(f1) < len(f0)
    assert {SEM["terrain"], SEM["building"]} <= set(f0.semantic.tolist())


def test_radar_range_rate_is_the_relative_radial_velocity():
    """Ego at 10 m/s; a car 30 m ahead, 3 m to the left, at 4 m/s: it closes at about 6 m/s."""
    m = empty_map()
    ego = EgoMotion(0.0, 0.0, 0.0, v=10.0, vx=10.0, vy=0.0)
    target = (5, 30.0, 3.0, 0.0, 4.6, 1.9, 4.0, 0.0)
    state = SceneState.build(m, ego, cars(target))
    radar = Radar(RadarSpec().noiseless(), sensor_rng(0, "radar"))
    (f,) = capture(m, state, radar)
    mine = f.instance == 5
    assert mine.any() and (f.instance[~mine] == -1).all()
    for r, az, rr in zip(f.range[mine], f.azimuth[mine], f.range_rate[mine]):
        u = np.array([np.cos(az), np.sin(az)]) * np.sqrt(1 - (0.1 / r) ** 2)  # scatterer 0.1 m above the radar
        assert rr == pytest.approx(float(np.array([4.0 - 10.0, 0.0]) @ u), abs=0.01)
        # the return lies on the car's box (rear face at x = 27.7 − 2.3 = 25.4 in the radar frame)
        x, y = r * np.cos(az), r * np.sin(az)
        assert 25.3 < x < 30.0 and 2.0 < y < 4.0
    # a crossing target moving at 5 m/s straight towards the ego's path, from the side
    crossing = SceneState.build(m, replace(ego, vx=0.0, v=0.0), cars((6, 20.0, 10.0, -np.pi / 2, 4.6, 1.9, 0.0, -5.0)))
    (f,) = capture(m, crossing, radar)
    (k,) = np.nonzero(f.instance == 6)[0][:1]
    az = f.azimuth[k]
    assert f.range_rate[k] == pytest.approx(-5.0 * np.sin(az) * np.sqrt(1 - (0.1 / f.range[k]) ** 2), abs=0.05)


def test_an_object_fully_behind_another_has_no_label_and_no_radar_return():
    """A 2.05 m van 15 m ahead hides a 1.45 m sedan 28 m ahead from a 1.5 m camera and the bumper radar."""
    m = empty_map()
    state = SceneState.build(m, EgoMotion(0.0, 0.0, 0.0), cars((1, 15.0, 0.0, 0.0, 5.2, 2.1, 0, 0),
                                                               (2, 28.0, 0.0, 0.0, 4.2, 1.8, 0, 0)))
    cam, rad = Camera(CameraSpec().noiseless(), sensor_rng(0, "camera")), Radar(RadarSpec().noiseless(), sensor_rng(0, "radar"))
    fc, fr = capture(m, state, cam, rad)
    assert [b.track_id for b in fc.boxes] == [1]
    assert not (fc.instance == 2).any()
    assert 1 in fr.instance and 2 not in fr.instance
    # move the van aside: the sedan is labelled and returns
    state.actors.y[0] = 6.0
    fc, fr = capture(m, state, cam, rad)
    assert {b.track_id for b in fc.boxes} == {1, 2}
    assert 2 in fr.instance


def test_partly_hidden_object_reports_its_visible_fraction():
    m = empty_map()
    # a pedestrian 20 m from the camera, straddling the left edge of a car 11.7 m from it
    # (the edge's bearing is 0.95 / 11.7 rad, which is y = 1.62 m at 20 m)
    state = SceneState.build(m, EgoMotion(0.0, 0.0, 0.0), Actors.make(
        vehicles=dict(id=[1], x=[15.0], y=[0.0], yaw=[0.0], length=[4.6], width=[1.9], v=[0.0]),
        pedestrians=dict(id=[9], x=[21.0], y=[1.62], yaw=[0.0], v=[0.0])))
    (f,) = capture(m, state, Camera(LEVEL_CAMERA, sensor_rng(0, "camera")))
    ped = [b for b in f.boxes if b.track_id == 9]
    assert ped and 0.2 < ped[0].visible_fraction < 0.9 and ped[0].cls == "pedestrian"


@pytest.mark.parametrize("state", ["red", "yellow", "green"])
def test_traffic_light_labels_carry_the_state(state):
    m = four_way(arm_length=80.0, control="signal")
    lane = m.lanes["S>J.0"]
    near, far = [i for i, p in enumerate(m.props) if p.lane_id == "S>J.0"]  # the near- and far-side heads
    prop_i = near
    plan = m.junctions["J"].signal
    t = next(t for t in np.arange(0, plan.cycle, 0.25) if plan.state(m.props[prop_i].signal_group, t).value == state)
    x, y = lane.position(lane.length - 14.0)
    snap = SceneState.build(m, EgoMotion(float(x), float(y), float(lane.heading_at(lane.length - 14.0))), t=float(t))
    (f,) = capture(m, snap, Camera(CameraSpec().noiseless(), sensor_rng(0, "camera")))
    lights = [b for b in f.boxes if b.cls.startswith("traffic_light")]
    ours = [b for b in lights if b.track_id in (int(snap.prop_ids[near]), int(snap.prop_ids[far]))]
    # the far-side head is 31 m away, too small to label; the near one carries the state
    assert [(b.cls, b.track_id) for b in ours] == [(f"traffic_light_{state}", int(snap.prop_ids[near]))]
    # the lit lamp is the brightest part of the light, in its colour
    b = ours[0]
    pixels = f.image[f.instance == b.track_id].astype(int)
    r, g, _ = pixels[np.argmax(pixels.sum(axis=1))]
    assert {"red": r > 2 * g, "yellow": r > 150 and g > 110, "green": g > 2 * r}[state]
    # heads seen from the side (the cross street's far-side heads) carry their own group's state
    group = {int(snap.prop_ids[i]): p.signal_group for i, p in enumerate(m.props)}
    assert all(b.cls == f"traffic_light_{plan.state(group[b.track_id], t).value}" for b in lights)


def test_lidar_and_radar_project_onto_the_object_in_the_camera():
    m = empty_map()
    state = SceneState.build(m, EgoMotion(0.0, 0.0, 0.0), cars((4, 18.0, -2.0, 0.3, 4.6, 1.9, 0, 0)))
    cam = Camera(CameraSpec().noiseless(), sensor_rng(0, "camera"))
    lid = Lidar(LidarSpec().noiseless(), sensor_rng(0, "lidar"))
    rad = Radar(RadarSpec().noiseless(), sensor_rng(0, "radar"))
    fc, fl, fr = capture(m, state, cam, lid, rad)
    (box,) = fc.boxes
    proj = lidar_to_camera(fl.points, fl.calib, fc.calib)
    on_car = fl.instance[proj.index] == 4
    uv = proj.uv[on_car]
    assert len(uv) > 20
    assert (uv[:, 0] >= box.x1 - 1).all() and (uv[:, 0] <= box.x2 + 1).all()
    # the lidar's depth agrees with the camera's depth image where the points land
    cam_depth = fc.depth[uv[:, 1].astype(int), uv[:, 0].astype(int)]
    assert np.median(np.abs(cam_depth - proj.depth[on_car])) < 0.1
    u, v_top, v_bottom = radar_to_camera(fr.range, fr.azimuth, fr.calib, fc.calib)
    mine = fr.instance == 4
    assert mine.any() and ((u[mine] > box.x1 - 2) & (u[mine] < box.x2 + 2)).all()
    assert (v_top[mine] < v_bottom[mine]).all()


@pytest.mark.parametrize("off_deg, labelled", [(0.0, True), (40.0, True), (55.0, False), (70.0, False)])
def test_a_light_is_labelled_only_when_seen_within_45_degrees_of_its_front(off_deg, labelled):
    """Farther round than 45°, the lit lamp is a pixel or two under its visor: its state can't be
    read, so it is not a label. The camera looks straight at a red head from 10 m each time."""
    m = empty_map()
    m.props = [Prop("traffic_light", 0.0, 0.0, yaw=0.0, length=0.3, width=0.3)]
    bearing = np.radians(off_deg)  # from the head towards the camera
    yaw = bearing + np.pi  # looking back at the head
    cam = np.array([np.cos(bearing), np.sin(bearing)]) * 10.0
    ego = EgoMotion(*(cam - LEVEL_CAMERA.mount.x * np.array([np.cos(yaw), np.sin(yaw)])), yaw)
    snap = SceneState(0.0, "day", ego, Actors.make(), np.array([1000]), np.array([LIGHT_CODE[LightState.RED]], np.int8))
    (f,) = capture(m, snap, Camera(LEVEL_CAMERA, sensor_rng(0, "camera")))
    assert (f.instance == 1000).sum() > 50  # in view and unhidden each time
    assert [b.cls for b in f.boxes if b.track_id == 1000] == (["traffic_light_red"] if labelled else [])
