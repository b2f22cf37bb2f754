"""The CasADi MPC (control/mpc.py) in closed loop on the simulator's own bicycle model."""
from __future__ import annotations

import shutil
import subprocess
import sys

import casadi as ca
import numpy as np
import pytest

import control.mpc as mpc_module
from control.mpc import NX, MPCController, MPCParams, discrete_step
from control.pure_pursuit import PurePursuitPID
from drivestack.bench import mpc_manoeuvres, run_manoeuvre
from sim.types import Control, Trajectory, VehicleState
from sim.vehicle_model import VehicleParams, step

VP = VehicleParams()


def line_traj(v: float, y: float = 0.0, seconds: float = 30.0) -> Trajectory:
    t = np.arange(0.0, seconds + 1e-9, 0.1)
    n = len(t)
    return Trajectory(t, v * t, np.full(n, y), np.zeros(n), np.full(n, v), np.zeros(n), np.zeros(n))


@pytest.fixture(scope="module")
def mpc() -> MPCController:
    return MPCController()


def test_fatrop_solver_builds():
    assert MPCController().solver.stats is not None  # nlpsol('...', 'fatrop', ...) works here


@pytest.mark.parametrize("solver", ["fatrop", "ipopt"])
def test_reaches_offset_line(solver):
    ctrl = MPCController(params=MPCParams(solver=solver))
    traj = line_traj(10.0, y=2.0)
    r = run_manoeuvre(ctrl, traj, 6.0, (traj.x, traj.y), start=VehicleState(0.0, 0.0, 0.0, 10.0))
    x, y, yaw, v = r["states"][-1][:4]
    assert abs(y - 2.0) < 0.05 and abs(yaw) < 0.01 and abs(v - 10.0) < 0.1
    assert abs(x - traj.at(6.0)[0]) < 0.3
    assert ctrl.fallback_steps == 0 and ctrl.failures == 0


def test_stops_at_the_line():
    traj, seconds, path = mpc_manoeuvres()["stop_line_15"]
    ctrl = MPCController()
    r = run_manoeuvre(ctrl, traj, seconds, path)
    assert abs(r["states"][-1][0] - traj.x[-1]) < 0.3 and r["states"][-1][3] < 0.05
    assert ctrl.fallback_steps == 0


@pytest.mark.parametrize("name", ["lane_change_15", "double_lane_change_60kmh", "urban_turn_r8"])
def test_manoeuvres_tracked(name):
    traj, seconds, path = mpc_manoeuvres()[name]
    ctrl = MPCController()
    r = run_manoeuvre(ctrl, traj, seconds, path)
    assert np.sqrt(np.mean(r["lat"] ** 2)) < 0.1 and r["lat"].max() < 0.3
    assert ctrl.fallback_steps == 0


def _check_bounds(cmds: np.ndarray, states: np.ndarray, s0: VehicleState, max_jerk: float, dt: float = 0.1):
    steer = np.concatenate([[s0.steer], cmds[:, 0]])
    accel = np.concatenate([[s0.accel], cmds[:, 1]])
    tol = 1e-6
    assert np.all(np.abs(cmds[:, 0]) <= VP.max_steer + tol)
    assert np.all(cmds[:, 1] <= VP.max_accel + tol) and np.all(cmds[:, 1] >= VP.min_accel - tol)
    assert np.all(np.abs(np.diff(steer)) <= VP.max_steer_rate * dt + tol)
    assert np.all(np.abs(np.diff(accel)) <= max_jerk * dt + tol)
    # the simulator's actuator never had to clip: it reached every command within the tick
    assert np.allclose(states[1::2, 4], cmds[:, 0], atol=1e-6)
    assert np.allclose(states[1::2, 5], cmds[:, 1], atol=1e-6)


def speed_profile(v0: float, a_target: float, jerk: float, seconds: float = 8.0) -> Trajectory:
    """Along +x from speed v0: acceleration ramps at `jerk` to `a_target`, then holds (to rest if braking)."""
    t = np.arange(0.0, seconds, 0.1)
    a = np.sign(a_target) * np.minimum(jerk * t, abs(a_target))
    v = v0 + np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * 0.1)])
    a[v <= 0] = 0.0
    v = np.maximum(v, 0.0)
    x = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * 0.1)])
    z = np.zeros_like(t)
    return Trajectory(t, x, z, z, v, a, z)


STRAIGHT = (np.array([0.0, 400.0]), np.zeros(2))


def test_respects_steer_and_steer_rate_bounds():
    """A 4 m step sideways at 15 m/s saturates the steer rate; nothing goes past a bound."""
    traj = line_traj(15.0, y=4.0)
    s0 = VehicleState(0.0, 0.0, 0.0, 15.0)
    ctrl = MPCController()
    r = run_manoeuvre(ctrl, traj, 4.0, (traj.x, traj.y), start=s0)
    _check_bounds(r["cmds"], r["states"], s0, VP.max_jerk)
    assert np.abs(np.diff(np.concatenate([[0.0], r["cmds"][:, 0]]))).max() > 0.99 * VP.max_steer_rate * 0.1
    assert ctrl.fallback_steps == 0


def test_respects_brake_bound():
    s0 = VehicleState(0.0, 0.0, 0.0, 15.0)
    ctrl = MPCController()
    r = run_manoeuvre(ctrl, speed_profile(15.0, -8.0, 30.0), 4.0, STRAIGHT, start=s0)
    _check_bounds(r["cmds"], r["states"], s0, VP.max_jerk)
    assert r["cmds"][:, 1].min() == pytest.approx(VP.min_accel, abs=1e-3)
    assert r["states"][-1][3] == 0.0 and ctrl.fallback_steps == 0


def test_respects_jerk_and_accel_bounds():
    """A configured jerk bound (4 m/s³) and the 3 m/s² accel bound both bind on a speed step."""
    s0 = VehicleState(0.0, 0.0, 0.0, 10.0)
    ctrl = MPCController(params=MPCParams(max_jerk=4.0))
    r = run_manoeuvre(ctrl, speed_profile(10.0, 3.0, 1000.0, 6.0), 4.0, STRAIGHT, start=s0)
    _check_bounds(r["cmds"], r["states"], s0, 4.0)
    assert np.abs(np.diff(np.concatenate([[0.0], r["cmds"][:, 1]]))).max() == pytest.approx(0.4, abs=1e-4)
    assert r["cmds"][:, 1].max() == pytest.approx(VP.max_accel, abs=1e-3)
    assert ctrl.fallback_steps == 0


def test_infeasible_reference_falls_back_and_counts():
    """Stopping in 12 m from 15 m/s cannot be done (≥ 14 m at −8 m/s²): the solve fails, the fallback drives."""
    t = np.arange(0.0, 8.0, 0.1)
    x = np.minimum(15.0 * t - 0.5 * 9.4 * t ** 2, 12.0)
    x[t > 15.0 / 9.4] = 12.0
    v = np.maximum(np.gradient(x, t), 0.0)
    z = np.zeros_like(t)
    ctrl = MPCController()
    c = ctrl.control(VehicleState(0.0, 0.0, 0.0, 15.0), Trajectory(t, x, z, z, v, np.gradient(v, t), z), 0.0)
    assert ctrl.failures == 1 and ctrl.fallback_steps == 1
    assert c.accel == VP.min_accel  # pure pursuit + PID brakes as hard as it may


def test_time_budget_zero_falls_back_and_counts():
    traj = line_traj(10.0, y=1.0)
    ctrl = MPCController(params=MPCParams(time_budget_ms=0.0))
    pp = PurePursuitPID()
    for k in range(5):
        ego = VehicleState(k * 1.0, 0.0, 0.0, 10.0)
        assert ctrl.control(ego, traj, 0.1 * k) == pp.control(ego, traj, 0.1 * k)
    assert ctrl.fallback_steps == 5


def test_failed_solve_falls_back_then_brakes():
    ctrl = MPCController()
    bad = Trajectory(np.arange(3) * 0.1, np.array([0.0, np.nan, 2.0]), np.zeros(3), np.zeros(3), np.full(3, 10.0),
                     np.zeros(3), np.zeros(3))
    c = ctrl.control(VehicleState(0.0, 0.0, 0.0, 10.0), bad, 0.0)  # no raise
    assert isinstance(c, Control) and ctrl.fallback_steps == 1

    class Broken(PurePursuitPID):
        def control(self, *a, **k):
            raise RuntimeError("boom")

    ctrl = MPCController(params=MPCParams(time_budget_ms=0.0), fallback=Broken())
    c = ctrl.control(VehicleState(0.0, 0.0, 0.0, 10.0, steer=0.1), line_traj(10.0), 0.0)
    assert c.accel < 0 and c.steer == pytest.approx(0.1) and ctrl.fallback_steps == 1


def test_infeasible_start_still_controls():
    """A state outside the model's bounds (over-limit steer) is clipped in; the solve still succeeds."""
    ctrl = MPCController()
    c = ctrl.control(VehicleState(0.0, 0.0, 0.0, 10.0, steer=1.5, accel=-20.0), line_traj(10.0), 0.0)
    assert abs(c.steer) <= VP.max_steer and VP.min_accel <= c.accel <= VP.max_accel


def test_deterministic():
    traj, seconds, path = mpc_manoeuvres()["double_lane_change_60kmh"]
    a = run_manoeuvre(MPCController(), traj, 3.0, path)
    b = run_manoeuvre(MPCController(), traj, 3.0, path)
    assert np.array_equal(a["cmds"], b["cmds"]) and np.array_equal(a["states"], b["states"])


@pytest.mark.parametrize("dt", [0.05, 0.1])
def test_model_equals_simulator(dt):
    """One stage of the MPC's model = one sim.vehicle_model.step for a command within the actuator limits."""
    z, u = ca.SX.sym("z", NX), ca.SX.sym("u", 2)
    f = ca.Function("f", [z, u], [ca.vertcat(*discrete_step(z, u, dt, VP))])
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = [rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-4, 4), rng.uniform(1.0, 30),  # v + a·dt > 0: no clamp
             rng.uniform(-0.5, 0.5), rng.uniform(-6, 2)]
        uu = [rng.uniform(-VP.max_steer_rate, VP.max_steer_rate), rng.uniform(-VP.max_jerk, VP.max_jerk)]
        steer_n = float(np.clip(s[4] + uu[0] * dt, -VP.max_steer, VP.max_steer))
        accel_n = float(np.clip(s[5] + uu[1] * dt, VP.min_accel, VP.max_accel))
        uu = [(steer_n - s[4]) / dt, (accel_n - s[5]) / dt]  # stay inside the bounds the MPC enforces
        sim = np.array(step(*s, steer_n, accel_n, VP, dt), dtype=float)
        mpc_ca = np.array(f(s, uu)).reshape(-1)
        mpc_np = np.array(discrete_step(np.array(s), np.array(uu), dt, VP, lib=np), dtype=float)
        np.testing.assert_allclose(mpc_ca, sim, rtol=0, atol=1e-9)
        np.testing.assert_allclose(mpc_np, sim, rtol=0, atol=1e-9)


def test_expert_controller_option():
    from drivestack.agents import make_agent
    from drivestack.errors import UserError

    assert isinstance(make_agent("expert").controller, MPCController)
    pid = make_agent("expert", controller="pid")
    assert isinstance(pid.controller, PurePursuitPID) and pid.fallback_steps == 0
    with pytest.raises(UserError):
        make_agent("expert", controller="lqr")


HAS_CC = shutil.which("gcc") is not None or shutil.which("cc") is not None


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the MPC runs CasADi's virtual machine")
def test_compiled_nlp_is_cached(monkeypatch):
    """A second controller, in this process and in a fresh one (eval's workers), loads the compiled
    NLP from the cache: a key that is not stable across processes would compile again."""
    assert MPCController().compiled  # compiles only when the cache lacks this NLP

    def compile_again(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(mpc_module, "_compile", compile_again)
    assert MPCController().compiled
    code = ("import control.mpc as m\n"
            "def again(*a, **k): raise AssertionError('compiled again')\n"
            "m._compile = again\n"
            "assert m.MPCController().compiled, 'not loaded from the cache'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_failed_compile_falls_back_to_the_virtual_machine(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise subprocess.CalledProcessError(1, "gcc")

    monkeypatch.setattr(mpc_module, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(mpc_module, "_compile", broken)
    ctrl = MPCController()
    assert not ctrl.compiled
    traj = line_traj(10.0, y=1.0)
    ctrl.control(VehicleState(0.0, 0.0, 0.0, 10.0), traj, 0.0)
    assert ctrl.failures == 0 and ctrl.fallback_steps == 0 and not ctrl.last_status.startswith("fallback")


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the MPC runs CasADi's virtual machine")
def test_compiled_equals_virtual_machine():
    """The compiled NLP functions change the speed of a solve, not its result."""
    traj, _, path = mpc_manoeuvres()["double_lane_change_60kmh"]
    compiled, vm = MPCController(), MPCController(params=MPCParams(codegen=False))
    assert compiled.compiled and not vm.compiled
    a, b = run_manoeuvre(compiled, traj, 3.0, path), run_manoeuvre(vm, traj, 3.0, path)
    np.testing.assert_allclose(a["cmds"], b["cmds"], rtol=0, atol=1e-9)
