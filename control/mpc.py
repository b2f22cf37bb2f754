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

The NLP's functions (objective, constraints and their derivatives) are compiled to C once and
cached as a shared library under `.cache/casadi/`, keyed by a hash of the NLP itself: CasADi's
virtual machine spends about half of fatrop's time evaluating them. The compiled functions give the
same solves (bit for bit on x86-64). Without a C compiler, or if compiling fails, the controller
silently uses the uncompiled solver (`compiled` is False).

If a solve fails, raises, or takes longer than `time_budget_ms` (0 forces it), the controller
falls back to pure pursuit + PID and, if that raises too, to a controlled brake. It never raises;
`fallback_steps` counts the ticks that used a fallback.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import casadi as ca
import numpy as np

from control.pure_pursuit import PurePursuitPID
from sim.types import Control, Trajectory, VehicleState
from sim.vehicle_model import VehicleParams, derivatives

NX, NU = 6, 2
# beside the project by default; DRIVESTACK_CACHE moves it (an installed package may sit read-only)
CACHE_DIR = Path(os.environ.get("DRIVESTACK_CACHE", Path(__file__).resolve().parents[1] / ".cache")) / "casadi"
# -O1: as fast as -O2/-O3 on these straight-line functions (A/B within 1 %), at about half the compile
# time. No contraction into fused multiply-adds: the compiled functions round like CasADi's VM.
CFLAGS = ("-O1", "-ffp-contract=off", "-shared", "-fPIC")
_failed: set[Path] = set()  # libraries that failed to build or load in this process: not tried again
_log = logging.getLogger(__name__)


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
    codegen: bool = True  # compile the NLP's functions to C (cached); False: CasADi's virtual machine


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


def _compile(solver: ca.Function, lib: Path) -> None:
    """Generate C for `solver`'s NLP functions and compile it to `lib`, atomically.

    Concurrent processes (eval's pool) may race on the same key: each builds in its own temporary
    folder and renames its result into place, so a reader only ever sees a complete library."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler")
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent, prefix=".build-") as tmp:
        cg = ca.CodeGenerator("nlp.c")  # the layout of Function.generate_dependencies, which nlpsol loads
        cg.add(solver.oracle())
        for name in solver.get_function():
            cg.add(solver.get_function(name))
        src = cg.generate(tmp + os.sep)
        out = os.path.join(tmp, lib.name)
        subprocess.run([cc, *CFLAGS, "-o", out, src], check=True, capture_output=True, timeout=600)
        os.replace(out, lib)


class MPCController:
    """Tracks a time-stamped `Trajectory`; `control(ego, traj, t, dt)` like `PurePursuitPID`."""

    def __init__(self, vehicle: VehicleParams = VehicleParams(), params: MPCParams = MPCParams(),
                 fallback: PurePursuitPID | None = None) -> None:
        self.vp, self.p = vehicle, params
        self.fallback = fallback or PurePursuitPID(vehicle)
        self.fallback_steps = 0
        self.failures = 0  # solves that failed or raised (a subset of fallback_steps)
        self.last_solve_ms: float | None = None
        self._status: str | None = ""
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
        # error_on_fail: a failed solve raises, so a success needs no (costly) look at the stats
        opts: dict = {"print_time": False, "error_on_fail": True}
        if p.solver == "fatrop":
            opts.update({"structure_detection": "auto", "debug": False, "equality": [True] * len(lbg),
                         "fatrop": {"print_level": 0, "max_iter": p.max_iter}})
        elif p.solver == "ipopt":
            opts.update({"ipopt": {"print_level": 0, "sb": "yes", "max_iter": p.max_iter}})
        else:
            raise ValueError(f"MPC solver must be fatrop or ipopt, not {p.solver!r}")
        self.compiled = False  # set by _compiled_solver when the NLP's functions run compiled
        self.solver = self._compiled_solver(nlp, opts) if p.codegen else None
        if self.solver is None:
            with _quiet_stdout():
                self.solver = ca.nlpsol("mpc", p.solver, nlp, {**opts, "expand": True})
        self.lbw, self.ubw = np.array(lbw), np.array(ubw)
        self.lbg, self.ubg = np.array(lbg), np.array(ubg)
        self.nw = len(lbw)
        # Solves run through a FunctionBuffer bound to these arrays: converting the arguments to DM
        # and the outputs back costs about a sixth of a solve. Inputs: x0, p, lbx, ubx, lbg, ubg, lam_x0, lam_g0.
        self._x0, self._par, self._w = np.zeros(self.nw), np.zeros(NX + 5 * (N + 1)), np.zeros(self.nw)
        self._args = [self._x0, self._par, self.lbw, self.ubw, self.lbg, self.ubg, np.zeros(self.nw), np.zeros(len(lbg))]
        self._buffer, self._solve = self.solver.buffer()
        for i, a in enumerate(self._args):
            self._buffer.set_arg(i, memoryview(a))
        self._buffer.set_res(0, memoryview(self._w))  # x only: the other outputs are not needed

    def _compiled_solver(self, nlp: dict, opts: dict) -> ca.Function | None:
        """nlpsol on the NLP's functions compiled to C, from the cache or compiled now; None if that fails.

        The key hashes the NLP's expression graph itself (so any change to the model, the weights,
        N, dt or the vehicle gets a new library), the solver and its options, the CasADi version and
        the compiler flags."""
        oracle = ca.Function("nlp", [nlp["x"], nlp["p"]], [nlp["f"], nlp["g"]], ["x", "p"], ["f", "g"])
        key = hashlib.sha256("\n".join([ca.__version__, self.p.solver, repr(opts), " ".join(CFLAGS),
                                        oracle.serialize()]).encode()).hexdigest()[:24]
        lib = CACHE_DIR / f"mpc_{self.p.solver}_{key}.so"
        if lib in _failed:
            return None
        try:
            if not lib.exists():
                with _quiet_stdout():
                    _compile(ca.nlpsol("mpc", self.p.solver, nlp, {**opts, "expand": True}), lib)
            with _quiet_stdout():
                solver = ca.nlpsol("mpc", self.p.solver, str(lib), opts)
        except Exception as e:  # noqa: BLE001 -- no compiler, a failed build or load: the VM is just slower
            _log.debug("MPC codegen unavailable, using CasADi's virtual machine: %s", e)
            _failed.add(lib)
            return None
        self.compiled = True
        return solver

    @property
    def last_status(self) -> str:
        """The last solve's return status, or "fallback: <reason>" on a tick that used the fallback.

        Read from the solver's stats only when asked: fetching them costs ~7 % of a solve."""
        if self._status is None:
            self._status = str(self._buffer.stats().get("return_status", ""))
        return self._status

    @last_status.setter
    def last_status(self, status: str) -> None:
        self._status = status

    def reset(self) -> None:
        self.fallback.reset()
        self._w0: np.ndarray | None = None
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
        self._x0[:] = self._initial_guess(z0, ref)
        self._par[:NX] = z0
        self._par[NX:] = ref.reshape(-1, order="F")
        t0 = time.perf_counter()
        try:
            self._solve()
            solved = True
        except RuntimeError:  # error_on_fail: the solver did not succeed
            solved = False
        self.last_solve_ms = (time.perf_counter() - t0) * 1e3
        self._status = None  # this solve's status, read on demand
        w = self._w.copy()  # the buffer is overwritten by the next solve
        if not solved or not np.all(np.isfinite(w)):
            self.failures += 1
            raise RuntimeError(f"solve failed: {self.last_status}")
        if self.last_solve_ms > self.p.time_budget_ms:
            self._w0 = w  # still a fine warm start
            raise TimeoutError(f"solve took {self.last_solve_ms:.1f} ms")
        self._w0 = w
        states = np.append(w, np.zeros(NU)).reshape(-1, NX + NU)[:, :NX]  # stage k: (z_k, u_k), no u_N
        self.last_plan = states
        # the command: the first stage's steer and accel (reached after one stage at the bounded rates)
        steer, accel = float(states[1, 4]), float(states[1, 5])
        return Control(min(max(steer, -vp.max_steer), vp.max_steer), min(max(accel, vp.min_accel), vp.max_accel))
