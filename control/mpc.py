"""Nonlinear MPC on the shared kinematic bicycle (sim.vehicle_model), in CasADi.

State  z = (x, y, yaw, v, steer, accel); input u = (steer rate, jerk). One stage of the model
is the simulator's own step: the actuator first (steer += rate·dt, accel += jerk·dt), then forward
Euler of `sim.vehicle_model.derivatives` with the *new* steer and accel. With the rate and jerk
bounds enforced on u, `discrete_step(dt)` equals `sim.vehicle_model.step` for any command inside
the limits (tests/control/test_mpc.py checks it to 1e-9). The sim's clamp v ≥ 0 is left out of
the prediction (a constraint v ≥ 0 can be infeasible right after hard braking).

The NLP is built once with `nlpsol` and parameters (initial state, N+1 reference samples), with
variables and constraints ordered stage by stage (x0, u0, x1, u1, …, xN; gap of stage k, then
its path constraints) so that fatrop's `structure_detection='auto'` finds the OCP structure.
Each solve is warm-started with the previous solution shifted by one stage.

If a solve fails, raises, or takes longer than `time_budget_ms` (0 forces it), the controller
falls back to pure pursuit + PID and, if that raises too, to a controlled brake. It never raises;
`fallback_steps` counts the ticks that used a fallback.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import casadi as ca
import numpy as np

from control.pure_pursuit import PurePursuitPID
from sim.types import Control, Trajectory, VehicleState
from sim.vehicle_model import VehicleParams, derivatives

NX, NU = 6, 2


@dataclass(frozen=True)
class MPCParams:
    horizon: int = 20  # N stages
    dt: float = 0.1  # stage length [s]
    solver: str = "fatrop"  # "fatrop" | "ipopt"
    # A slower solve is discarded for the fallback; 0 forces the fallback. Off (inf) by default:
    # a wall-clock budget makes closed-loop results depend on machine load, and `max_iter` already
    # bounds the work deterministically. `bench mpc --budget` sets one to measure real-time behaviour.
    time_budget_ms: float = float("inf")
    max_iter: int = 100
    max_jerk: float | None = None  # [m/s³]; None: the actuator's VehicleParams.max_jerk
    # weights (per stage; the terminal stage counts `w_terminal` times)
    w_pos: float = 2.0  # [1/m²]
    w_yaw: float = 2.0  # [1/rad²]
    w_v: float = 1.0  # [s²/m²]
    w_steer: float = 0.5
    w_accel: float = 1.0  # on accel − reference accel
    w_steer_rate: float = 2.0
    w_jerk: float = 0.01
    w_terminal: float = 3.0
    brake_decel: float = -4.0  # the last-resort brake [m/s²]


def discrete_step(z, u, dt: float, p: VehicleParams, lib=ca):
    """One stage of the model: actuator first, then forward Euler (the simulator's scheme).

    z = (x, y, yaw, v, steer, accel), u = (steer rate, jerk). Works on casadi symbols or numbers.
    """
    x, y, yaw, v, steer, accel = (z[i] for i in range(NX))
    steer_n = steer + u[0] * dt
    accel_n = accel + u[1] * dt
    dx, dy, dyaw = derivatives(yaw, v, steer_n, p.wheelbase, lib=lib)
    return [x + dx * dt, y + dy * dt, yaw + dyaw * dt, v + accel_n * dt, steer_n, accel_n]


@contextmanager
def _quiet_stdout():
    """Silence C-level prints on fd 1 (solver banners that ignore print_level)."""
    try:
        fd = os.dup(1)
    except OSError:  # no real stdout (some test harnesses)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)
        os.close(devnull)


class MPCController:
    """Tracks a time-stamped `Trajectory`; `control(ego, traj, t, dt)` like `PurePursuitPID`."""

    def __init__(self, vehicle: VehicleParams = VehicleParams(), params: MPCParams = MPCParams(),
                 fallback: PurePursuitPID | None = None) -> None:
        self.vp, self.p = vehicle, params
        self.fallback = fallback or PurePursuitPID(vehicle)
        self.fallback_steps = 0
        self.failures = 0  # solves that failed or raised (a subset of fallback_steps)
        self.last_solve_ms: float | None = None
        self.last_status = ""
        self._build()
        self.reset()

    # ---------------------------------------------------------------- NLP
    def _build(self) -> None:
        p, vp = self.p, self.vp
        N, dt = p.horizon, p.dt
        jmax = vp.max_jerk if p.max_jerk is None else p.max_jerk
        z0 = ca.SX.sym("z0", NX)
        ref = ca.SX.sym("ref", 5, N + 1)  # x, y, yaw, v, a per stage
        Z = [ca.SX.sym(f"z{k}", NX) for k in range(N + 1)]
        U = [ca.SX.sym(f"u{k}", NU) for k in range(N)]
        w, lbw, ubw, g, lbg, ubg = [], [], [], [], [], []
        zlo = [-np.inf, -np.inf, -np.inf, -np.inf, -vp.max_steer, vp.min_accel]
        zhi = [np.inf, np.inf, np.inf, np.inf, vp.max_steer, vp.max_accel]
        ulo = [-vp.max_steer_rate, -jmax]
        uhi = [vp.max_steer_rate, jmax]
        J = 0
        for k in range(N + 1):
            w.append(Z[k])
            lbw += zlo
            ubw += zhi
            if k == 0:  # stage 0's path constraint: the measured state
                g.append(Z[0] - z0)
                lbg += [0.0] * NX
                ubg += [0.0] * NX
            else:
                wk = p.w_terminal if k == N else 1.0
                zk, r = Z[k], ref[:, k]
                J += wk * (p.w_pos * ((zk[0] - r[0]) ** 2 + (zk[1] - r[1]) ** 2) + p.w_yaw * (zk[2] - r[2]) ** 2
                           + p.w_v * (zk[3] - r[3]) ** 2 + p.w_steer * zk[4] ** 2 + p.w_accel * (zk[5] - r[4]) ** 2)
            if k < N:
                w.append(U[k])
                lbw += ulo
                ubw += uhi
                J += p.w_steer_rate * U[k][0] ** 2 + p.w_jerk * U[k][1] ** 2
                # the dynamics gap of stage k (no other path constraints: bounds sit on the variables)
                g.append(Z[k + 1] - ca.vertcat(*discrete_step(Z[k], U[k], dt, vp)))
                lbg += [0.0] * NX
                ubg += [0.0] * NX
        nlp = {"x": ca.vertcat(*w), "p": ca.vertcat(z0, ca.vec(ref)), "f": J, "g": ca.vertcat(*g)}
        opts: dict = {"print_time": False, "expand": True, "error_on_fail": False}
        if p.solver == "fatrop":
            opts.update({"structure_detection": "auto", "debug": False, "equality": [True] * len(lbg),
                         "fatrop": {"print_level": 0, "max_iter": p.max_iter}})
        elif p.solver == "ipopt":
            opts.update({"ipopt": {"print_level": 0, "sb": "yes", "max_iter": p.max_iter}})
        else:
            raise ValueError(f"MPC solver must be fatrop or ipopt, not {p.solver!r}")
        with _quiet_stdout():
            self.solver = ca.nlpsol("mpc", p.solver, nlp, opts)
        self.lbw, self.ubw = np.array(lbw), np.array(ubw)
        self.lbg, self.ubg = np.array(lbg), np.array(ubg)
        self.nw = len(lbw)
        self._zidx = np.array([k * (NX + NU) for k in range(N + 1)])

    def reset(self) -> None:
        self.fallback.reset()
        self._w0: np.ndarray | None = None
        self._lam_g: np.ndarray | None = None
        self.last_plan: np.ndarray | None = None  # (N+1, NX) predicted states of the last good solve

    # ---------------------------------------------------------------- reference
    def reference(self, traj: Trajectory, t: float, ego_yaw: float) -> np.ndarray:
        """(5, N+1) samples x, y, yaw, v, a of the trajectory at t + k·dt; yaw unwrapped near ego_yaw.

        Past the plan's end the reference carries on at the last speed along the last heading."""
        ts = t + self.p.dt * np.arange(self.p.horizon + 1)
        yaw = np.unwrap(np.asarray(traj.yaw, float))
        r = np.vstack([np.interp(ts, traj.t, a) for a in (traj.x, traj.y, yaw, traj.v, traj.a)])
        past = ts > traj.t[-1]
        if past.any():  # beyond the plan's end: carry on along its last heading at its last speed
            dt_past = ts[past] - traj.t[-1]
            r[0, past] = traj.x[-1] + np.cos(yaw[-1]) * traj.v[-1] * dt_past
            r[1, past] = traj.y[-1] + np.sin(yaw[-1]) * traj.v[-1] * dt_past
            r[4, past] = 0.0
        r[2] -= 2 * math.pi * round((r[2, 0] - ego_yaw) / (2 * math.pi))
        return r

    def _initial_guess(self, z0: np.ndarray, ref: np.ndarray) -> np.ndarray:
        N = self.p.horizon
        if self._w0 is not None:  # shift the previous solution by one stage
            w = self._w0.reshape(-1)
            st = NX + NU
            shifted = np.concatenate([w[st:], w[-st:]])  # last stage repeated (its u slot is dropped)
            shifted = shifted[: self.nw]
            shifted[:NX] = z0
            return shifted
        # cold start: roll the model out from z0 with zero steer rate and jerk (a consistent guess)
        w = np.zeros(self.nw)
        z = z0.astype(float)
        for k in range(N + 1):
            i = k * (NX + NU)
            w[i:i + NX] = z
            z = np.array(discrete_step(z, np.zeros(NU), self.p.dt, self.vp, lib=np), dtype=float)
        return w

    # ---------------------------------------------------------------- control
    def control(self, ego: VehicleState, traj: Trajectory, t: float, dt: float = 0.1) -> Control:
        try:
            return self._mpc(ego, traj, t)
        except Exception as e:  # noqa: BLE001 -- never raise into the episode
            self.last_status = f"fallback: {type(e).__name__}: {e}"
            self.fallback_steps += 1
            self._w0 = None
            try:
                return self.fallback.control(ego, traj, t, dt)
            except Exception:  # noqa: BLE001
                return Control(float(np.clip(ego.steer, -self.vp.max_steer, self.vp.max_steer)),
                               self.p.brake_decel if ego.v > 0.0 else 0.0)

    def _mpc(self, ego: VehicleState, traj: Trajectory, t: float) -> Control:
        vp = self.vp
        if self.p.time_budget_ms <= 0:
            raise TimeoutError("time budget 0")
        z0 = np.array([ego.x, ego.y, ego.yaw, ego.v,
                       min(max(ego.steer, -vp.max_steer), vp.max_steer), min(max(ego.accel, vp.min_accel), vp.max_accel)])
        ref = self.reference(traj, t, ego.yaw)
        if not np.all(np.isfinite(ref)) or not np.all(np.isfinite(z0)):
            raise ValueError("non-finite state or reference")
        args = dict(x0=self._initial_guess(z0, ref), p=np.concatenate([z0, ref.reshape(-1, order="F")]),
                    lbx=self.lbw, ubx=self.ubw, lbg=self.lbg, ubg=self.ubg)
        if self._lam_g is not None and self.p.solver == "ipopt":
            pass  # ipopt's warm start of multipliers needs warm_start_init_point; primal shift suffices
        t0 = time.perf_counter()
        sol = self.solver(**args)
        self.last_solve_ms = (time.perf_counter() - t0) * 1e3
        stats = self.solver.stats()
        self.last_status = str(stats.get("return_status", ""))
        w = np.array(sol["x"]).reshape(-1)
        if not stats.get("success", False) or not np.all(np.isfinite(w)):
            self.failures += 1
            raise RuntimeError(f"solve failed: {self.last_status}")
        if self.last_solve_ms > self.p.time_budget_ms:
            self._w0 = w  # still a fine warm start
            raise TimeoutError(f"solve took {self.last_solve_ms:.1f} ms")
        self._w0 = w
        states = np.vstack([w[i:i + NX] for i in self._zidx])
        self.last_plan = states
        # the command: the first stage's steer and accel (reached after one stage at the bounded rates)
        steer, accel = float(states[1, 4]), float(states[1, 5])
        return Control(float(np.clip(steer, -vp.max_steer, vp.max_steer)), float(np.clip(accel, vp.min_accel, vp.max_accel)))
