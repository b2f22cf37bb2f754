"""Drive episodes and record what the e2e policy needs: camera input, speed, command, expert label.

One loop serves both ways of collecting data:
- expert demonstrations with DART-style noise (Laskey et al. 2017): the executed control is the
  expert's plus a perturbation, the recorded label is the expert's clean control, so the data
  shows how to recover from the drift that the noise (and later the policy's errors) cause;
- DAgger rollouts (Ross et al. 2011): the policy drives, and the expert runs in shadow mode on
  the same privileged world to label every state the policy visits.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from drivestack.agents.expert import ExpertAgent
from drivestack.e2e import dataset
from drivestack.e2e.model import LOOKAHEAD_S, InputSpec, camera_config, preprocess
from drivestack.e2e.scenarios import Draw, draw
from drivestack.runner import OUTCOMES
from drivestack.workers import process_pool
from sim.route import COMMANDS
from sim.sensors.rig import build_rig
from sim.sensors.specs import CameraSpec, OdometrySpec
from sim.types import Control, Observation
from sim.world import AGENT_EVERY, World


@dataclass(frozen=True)
class Noise:
    """The executed control's perturbation: AR(1) Gaussian at the 10 Hz agent rate, so that one push
    lasts about 1/(1 − rho) ticks, long enough to move the car off its line (white noise at 10 Hz
    is averaged away by the steer-rate limit). On in a share of episodes; the rest are clean."""

    steer_std: float = 0.02  # [rad], stationary; at 0.03 the expert already drifts into emergency stops
    accel_std: float = 0.5  # [m/s²]
    rho: float = 0.8  # ≈ 0.5 s pushes
    episode_share: float = 0.7


@dataclass(frozen=True)
class RecordConfig:
    camera: CameraSpec = field(default_factory=CameraSpec)
    spec: InputSpec = InputSpec()
    every: int = 2  # keep every k-th agent tick: consecutive 10 Hz frames are near duplicates
    max_s: float = 45.0  # sim seconds per episode at most: many short episodes beat a few long ones
    noise: Noise | None = Noise()
    stuck_s: float = 2.0  # the expert in emergency stop this long, stopped off its lane: cut (see `drive`)
    stuck_offset: float = 0.5  # [m] from the route's centre line
    goal_margin: float = 30.0  # no frames this close to the goal [m]: the expert brakes for a goal the camera can't see


class Driver(Protocol):
    def reset(self, route, road_map) -> None: ...
    def act(self, obs: Observation) -> Control: ...


def shadow_expert() -> ExpertAgent:
    """The expert with no wall-clock budget on its MPC, so labels do not depend on machine load."""
    from control.mpc import MPCController, MPCParams

    expert = ExpertAgent(controller="pid")  # cheap to build; its tracker is replaced by the budget-free MPC
    expert.controller, expert.controller_name = MPCController(params=MPCParams(time_budget_ms=float("inf"))), "mpc"
    return expert


def drive(d: Draw, cfg: RecordConfig, driver: Driver | None = None, noise_seed: int = 0,
          source: str = "expert") -> dataset.Episode:
    """One episode: the expert drives (with noise) or `driver` does with the expert labelling in shadow.

    The planner gives up (emergency stop, forever) once the car is far enough off its lane that no
    candidate stays in the drivable area, which a drifting policy reaches easily. Those labels
    would teach "stop when off-centre", so standing in emergency stop for `stuck_s` more than
    `stuck_offset` off the route ends the episode, and its frames since that emergency began are
    dropped. (On the lane, an emergency stop is the expert waiting for a hazard: kept.)"""
    import torch

    torch.set_num_threads(1)  # preprocessing and the policy: one thread is fastest beside the simulator
    world = World(d.scenario, d.seed)
    expert = shadow_expert()
    expert.reset(world.route, world.map)
    if driver is not None:
        driver.reset(world.route, world.map)
    rig = build_rig([cfg.camera, OdometrySpec()], world)
    rng = np.random.default_rng([noise_seed, d.seed, 0xDA27])
    noise = cfg.noise if driver is None and cfg.noise is not None and rng.random() < cfg.noise.episode_share else None
    push = np.zeros(2)
    rows: list[dict] = []
    control, tick, outcome, emergency_from = Control(0.0, 0.0), 0, None, None
    while outcome is None and world.t < cfg.max_s:
        if world.steps % AGENT_EVERY == 0:
            keep = tick % cfg.every == 0
            obs = world.observe()
            if keep or driver is not None:  # render only what is recorded or driven on
                obs = rig.observe(world, obs)
            label = expert.act(replace(obs, privileged=world))
            if not expert.last.emergency:
                emergency_from = None
            elif emergency_from is None:
                emergency_from = (len(rows), world.t)  # (first frame, time) of this emergency stop
            if emergency_from is not None and world.t - emergency_from[1] >= cfg.stuck_s and obs.ego.v < 0.1 \
                    and abs(expert.last.d) > cfg.stuck_offset:
                del rows[emergency_from[0]:]
                outcome = "expert_stuck"
                break
            control = driver.act(obs) if driver is not None else label
            if noise is not None:
                std = np.array([noise.steer_std, noise.accel_std])
                push = noise.rho * push + np.sqrt(1 - noise.rho ** 2) * std * rng.standard_normal(2)
                control = Control(control.steer + float(push[0]), control.accel + float(push[1]))
            if keep and world.route.length - expert.last.S > cfg.goal_margin:
                rows.append({"image": preprocess(obs.sensors[cfg.camera.name].image, cfg.spec)[0].numpy(),
                             "speed": obs.odometry.speed, "command": COMMANDS.index(obs.command), "steer": label.steer,
                             "target_speed": expert.last.trajectory.at(obs.t + LOOKAHEAD_S)[3],
                             "accel": label.accel, "exec_steer": control.steer,
                             "exec_accel": control.accel, "noisy": noise is not None})
            tick += 1
        for event in world.step(control):
            outcome = outcome or OUTCOMES.get(event.kind)
    info = {"scenario": d.scenario.name, "seed": d.seed, "family": d.family, "source": source,
            "outcome": outcome or "cut", "weather": world.weather, "sim_s": round(world.t, 2), "noise": noise is not None}
    return dataset.Episode.from_rows(rows, info, cfg.spec)


def _record_one(root: str, seed: int, index: int, cfg: RecordConfig) -> dict:
    """Worker body: draw, drive and save episode `index`; returns its manifest entry."""
    return dataset.save_episode(Path(root), index, drive(draw(seed, index), cfg, noise_seed=seed))


def record_dataset(root: Path, episodes: int, seed: int = 0, cfg: RecordConfig = RecordConfig(), workers: int = 1,
                   on_episode: Callable[[dict], None] | None = None) -> dict:
    """Record `episodes` expert episodes into a new dataset at `root`; returns the manifest.

    Deterministic in (seed, episodes, cfg): each episode depends on its index only, so the result
    is the same with any number of workers."""
    meta = {"seed": seed, "every": cfg.every, "max_s": cfg.max_s, "goal_margin_m": cfg.goal_margin, "agent_hz": 10,
            "noise": asdict(cfg.noise) if cfg.noise else None, "source": "expert"}
    dataset.create(root, camera_config(cfg.camera), cfg.spec, meta)
    manifest = dataset.read_manifest(root)
    entries: dict[int, dict] = {}

    def done(index: int, entry: dict) -> None:
        entries[index] = entry
        manifest["episodes"] = [entries[i] for i in sorted(entries)]
        dataset.write_manifest(root, manifest)  # after every episode: a stopped run keeps what it has
        if on_episode:
            on_episode(entry)

    if workers <= 1:
        for i in range(episodes):
            done(i, _record_one(str(root), seed, i, cfg))
    else:
        os.environ.setdefault("DRIVESTACK_RAY_THREADS", "1")  # one ray thread per worker; inherited when spawned
        with process_pool(workers) as pool:
            futures = {i: pool.submit(_record_one, str(root), seed, i, cfg) for i in range(episodes)}
            for i, fut in futures.items():
                done(i, fut.result())
    return manifest
