"""A front radar modelled from the actors' states, with line of sight checked in the ray-casting
scene: an object with no clear line to any of its scattering points returns nothing.

Each object scatters from the point of its box nearest the radar, and cars also from their two
outermost visible corners. A scatterer is detected when its RCS − 40·log10(range) clears the
threshold (with a soft edge); returns that fall in one range × azimuth × range-rate resolution
cell merge into one (power-weighted); measurements get Gaussian noise; Poisson false alarms look
like stationary clutter.
"""
from __future__ import annotations

import numpy as np

from sim.sensors.camera import _HI, _LO
from sim.sensors.frames import SEM, RadarFrame
from sim.sensors.meshes import LABELLED_TYPES, MAT_SEMANTIC, type_mesh
from sim.sensors.scene import FrameScene
from sim.sensors.specs import RadarSpec
from sim.sensors.state import SceneState
from sim.sensors.weather import weather

RCS_DBSM = {"sedan": 10.0, "suv": 13.0, "van": 16.0, "pedestrian": -8.0, "stop_sign": 4.0, "traffic_light": 6.0}
SCATTER_Z = {"sedan": 0.6, "suv": 0.65, "van": 0.7, "pedestrian": 1.0, "stop_sign": 2.2, "traffic_light": 2.9}
SEMANTIC_OF = {k: int(MAT_SEMANTIC[type_mesh(k).material[type_mesh(k).labelled][0]]) for k in LABELLED_TYPES}
_SCATTER_Z = np.array([SCATTER_Z[k] for k in LABELLED_TYPES])


class Radar:
    def __init__(self, spec: RadarSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.calib = spec.calib()

    def _scatterers(self, scene: FrameScene, o: np.ndarray):
        """Candidate scattering points (vehicle frame): (object row, point, per-point RCS share [dB]).

        Every object scatters from the point of its box nearest the radar; cars also from their
        two outermost corners as the radar sees them, pulled 0.2 m in. Objects well outside the
        field of view or range are skipped before any geometry."""
        obj, cal = scene.objects, self.calib
        rel = np.stack([obj.x - o[0], obj.y - o[1]], axis=1)
        dist = np.hypot(rel[:, 0], rel[:, 1])
        R_rv = cal.T_vehicle_radar[:2, :2].T
        p_r = rel @ R_rv.T
        az = np.abs(np.arctan2(p_r[:, 1], p_r[:, 0]))
        rows = np.nonzero((dist < cal.max_range + 6) & ((az < cal.fov + 0.2) | (dist < 8)))[0]
        if not len(rows):
            return np.zeros(0, int), np.zeros((0, 3)), np.zeros(0)
        kinds = obj.kind[rows]
        lo2, hi2 = _LO[kinds, :2] * obj.scale[rows, :2], _HI[kinds, :2] * obj.scale[rows, :2]
        cw, sw = np.cos(obj.yaw[rows]), np.sin(obj.yaw[rows])
        rx, ry = -rel[rows, 0], -rel[rows, 1]  # the radar relative to each object
        q = np.stack([cw * rx + sw * ry, -sw * rx + cw * ry], axis=1)  # ... in the object's frame
        local = [np.clip(q, lo2, hi2)]
        corners = np.stack([np.stack([lo2[:, 0], lo2[:, 1]], 1), np.stack([hi2[:, 0], lo2[:, 1]], 1),
                            np.stack([hi2[:, 0], hi2[:, 1]], 1), np.stack([lo2[:, 0], hi2[:, 1]], 1)], axis=1)
        rel_c = corners - q[:, None, :]
        ang = np.arctan2(rel_c[..., 1], rel_c[..., 0])
        ang = ang - ang[:, :1]  # relative to the first corner, wrapped: the box subtends < 180°
        ang = (ang + np.pi) % (2 * np.pi) - np.pi
        centre = ((lo2 + hi2) / 2)[:, None, :]
        n = np.arange(len(rows))
        for k in (np.argmin(ang, axis=1), np.argmax(ang, axis=1)):
            c = corners[n, k]
            local.append(c + 0.2 * np.sign(centre[:, 0] - c))
        is_car = kinds < 3
        pts, own = [], []
        for i, p in enumerate(local):
            take = n if i == 0 else n[is_car]
            pts.append(p[take])
            own.append(take)
        own = np.concatenate(own)
        p = np.concatenate(pts)
        r = rows[own]
        z = _SCATTER_Z[obj.kind[r]]
        world = np.stack([obj.x[r] + cw[own] * p[:, 0] - sw[own] * p[:, 1],
                          obj.y[r] + sw[own] * p[:, 0] + cw[own] * p[:, 1], z], axis=1)
        share = np.where(is_car[own], -10 * np.log10(3.0), 0.0)
        return r, world, share

    def capture(self, scene: FrameScene, state: SceneState) -> RadarFrame:
        spec, cal = self.spec, self.calib
        w = weather(state.weather)
        ego = state.ego
        T_vr = cal.T_vehicle_radar
        o = T_vr[:3, 3]
        R_rv = T_vr[:3, :3].T
        # the radar's own velocity in the vehicle frame: the ego's, plus the yaw rate's lever arm
        ev = scene.vector_to_vehicle(np.array([ego.vx, ego.vy, 0.0])).astype(float)
        v_r = np.array([ev[0] - ego.yaw_rate * o[1], ev[1] + ego.yaw_rate * o[0], 0.0])
        obj = scene.objects
        rows, pts, share = self._scatterers(scene, o)
        rng_out, az_out, rr_out, rcs_out, inst_out, sem_out = ([] for _ in range(6))
        if len(rows):
            rel = pts - o
            dist = np.linalg.norm(rel, axis=1)
            u = rel / dist[:, None]
            p_r = rel @ R_rv.T
            az = np.arctan2(p_r[:, 1], p_r[:, 0])
            cand = np.nonzero((np.abs(az) <= cal.fov) & (dist <= cal.max_range) & (dist > 0.5))[0]
            if len(cand):  # line of sight: the first thing along the ray must be the object itself
                rays = np.column_stack([np.broadcast_to(o, (len(cand), 3)), u[cand]]).astype(np.float32)
                h = scene.cast(rays)
                los = (h.t >= dist[cand] - 0.3) | (scene.instance[h.tri] == obj.id[rows[cand]])
                cand = cand[los]
            kinds = [LABELLED_TYPES[k] for k in obj.kind[rows[cand]]]
            base = np.array([RCS_DBSM[k] for k in kinds]) + share[cand]
            rcs = base + spec.rcs_std_db * self.rng.standard_normal(len(cand))
            snr = rcs - 40 * np.log10(np.maximum(dist[cand], 1.0))
            p_det = 1 / (1 + np.exp(-(snr - spec.snr_threshold_db) / 1.0))
            det = self.rng.random(len(cand)) < p_det
            c = cand[det]
            vel = np.column_stack([obj.vx[rows[c]], obj.vy[rows[c]], np.zeros(len(c))])
            rr = np.einsum("ij,ij->i", vel - v_r, u[c])
            k = w.radar_noise
            rng_out.append(dist[c] + k * spec.range_std * self.rng.standard_normal(len(c)))
            az_out.append(az[c] + k * np.radians(spec.azimuth_std_deg) * self.rng.standard_normal(len(c)))
            rr_out.append(rr + k * spec.range_rate_std * self.rng.standard_normal(len(c)))
            rcs_out.append(rcs[det])
            inst_out.append(obj.id[rows[c]])
            sem_out.append([SEMANTIC_OF[kk] for kk, d in zip(kinds, det) if d])
        n_fa = int(self.rng.poisson(spec.false_alarms)) if spec.false_alarms > 0 else 0
        if n_fa:  # clutter: stationary-looking returns anywhere in the field of view
            fr = self.rng.uniform(2.0, cal.max_range, n_fa)
            fa = self.rng.uniform(-cal.fov, cal.fov, n_fa)
            uv = R_rv.T @ np.stack([np.cos(fa), np.sin(fa), np.zeros(n_fa)])
            rng_out.append(fr)
            az_out.append(fa)
            rr_out.append(-(v_r @ uv) + 0.3 * self.rng.standard_normal(n_fa))
            rcs_out.append(self.rng.uniform(-15, -3, n_fa))
            inst_out.append(np.full(n_fa, -1))
            sem_out.append(np.full(n_fa, SEM["sky"]))
        cat = [np.concatenate(x) if x else np.zeros(0) for x in (rng_out, az_out, rr_out, rcs_out, inst_out, sem_out)]
        r, a, rr, rcs, inst, sem = _merge(*cat, cal.range_resolution, cal.azimuth_resolution, cal.range_rate_resolution)
        order = np.argsort(r, kind="stable")
        return RadarFrame(spec.name, state.t, r[order], a[order], rr[order], rcs[order],
                          inst[order].astype(np.int32), sem[order].astype(np.uint8), cal)


def _merge(r, a, rr, rcs, inst, sem, dr, da, dv):
    """Returns within one resolution cell (range, azimuth and range rate) become one:
    power-weighted position and rate, summed power, labelled with the strongest source."""
    order = np.argsort(-rcs, kind="stable")
    groups: list[list[int]] = []
    for i in order:
        for g in groups:
            j = g[0]
            if abs(r[i] - r[j]) < dr and abs(a[i] - a[j]) < da and abs(rr[i] - rr[j]) < dv:
                g.append(i)
                break
        else:
            groups.append([i])
    out = np.zeros((len(groups), 6))
    for n, g in enumerate(groups):
        p = 10 ** (rcs[g] / 10)
        wgt = p / p.sum()
        out[n] = (r[g] @ wgt, a[g] @ wgt, rr[g] @ wgt, 10 * np.log10(p.sum()), inst[g[0]], sem[g[0]])
    return tuple(out.T) if len(groups) else tuple(np.zeros(0) for _ in range(6))
