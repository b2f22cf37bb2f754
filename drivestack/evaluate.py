"""Batch evaluation: every (scenario, seed, agent) episode, on local processes or Ray tasks.

`evaluate()` plans the episodes, runs the ones not yet done, and writes to its output folder:

  episodes.jsonl   one full record per line, appended as episodes finish (what `--resume` reads)
  results.csv      one row per episode, sorted by (agent, scenario, seed) in the order given
  summary.json     per agent and per scenario: means with 95% intervals, counts (`sim.aggregate`)
  report.md        tables, the infraction breakdown, the worst episodes and PNG plots
  config.json      the resolved run: scenarios, agents, seeds, backend, workers
  scenarios/       each scenario as resolved, so that any row can be replayed

An episode is a pure function of (scenario, agent, seed), so the results do not depend on the
backend or on the number of workers; only `wall_s` does. An exception inside an episode (an
agent's bug) becomes that episode's outcome `error` with its message, and the batch goes on.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml

from drivestack.agents import AGENTS
from drivestack.agents.spec import absolute_spec, agent_class, is_spec
from drivestack.errors import UserError
from drivestack.workers import process_pool

BACKENDS = ("local", "ray")
MAX_WORKERS = 64
MAX_SEEDS = 10_000
RAY_OBJECT_STORE = 80 * 1024**2  # [bytes]; records are small, Ray's minimum is about 75 MB

# results.csv columns: the episode contract of DESIGN.md first, then the extra terms
CONTRACT = ["scenario", "agent", "seed", "outcome", "route_completion", "infraction_penalty", "driving_score",
            "collisions", "red_light_violations", "stop_sign_violations", "offroad_fraction", "min_ttc_s",
            "max_abs_jerk", "comfort_violations", "distance_m", "duration_s", "sim_steps", "wall_s", "fallback_steps"]
EXTRA = ["error", "at_fault_collisions", "progress", "drivable_area_compliance", "max_outside_m",
         "driving_direction_compliance", "wrong_way_m", "speed_limit_compliance", "max_overspeed_mps",
         "ttc_within_bound", "ttc_below_fraction", "comfortable", "comfort", "hard_braking_events",
         "collisions_per_km", "time_to_goal_s", "nuplan_score", "weather", "route_length_m",
         "comfort_violations_nonemergency", "emergency_ticks"]
COLUMNS = CONTRACT + EXTRA


@dataclass(frozen=True)
class ScenarioRef:
    """A scenario as the user named it, resolved once in the parent and shipped to the workers."""

    arg: str  # as given on the command line (a shipped name or a file), for replay commands
    name: str
    data: dict  # the validated scenario, JSON-able
    source: str


@dataclass(frozen=True)
class Task:
    scenario: ScenarioRef
    agent: str  # as given: a registered name or a `module:Class` / `file.py:Class` spec
    agent_spec: str  # the same, with file paths made absolute for workers elsewhere
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return self.scenario.name, self.agent, self.seed


@dataclass
class EvalResult:
    records: list[dict]  # in plan order
    summary: dict
    out: Path
    ran: int = 0  # episodes run now (the rest came from --resume)
    wall_s: float = 0.0
    config: dict = field(default_factory=dict)
    videos: list[dict] = field(default_factory=list)  # `videos=K`: the recorded worst episodes (video.record_worst)


# ---- inputs ----------------------------------------------------------------------------------------

def resolve_scenarios(args: Iterable[str]) -> list[ScenarioRef]:
    """Load and validate each scenario once (`all`: every shipped one); names must be unique."""
    from sim.scenario import load_scenario
    from sim.scenario import shipped_scenarios

    args = [str(a) for a in args]
    if "all" in args:  # every shipped scenario, in place of `all`
        i = args.index("all")
        args = args[:i] + [p.stem for p in shipped_scenarios()] + args[i + 1:]
    refs, seen = [], {}
    for arg in args:
        sc = load_scenario(arg)
        if sc.name in seen:
            if seen[sc.name] == str(arg):
                continue
            raise UserError(f"scenarios: {seen[sc.name]} and {arg} are both named {sc.name!r}; rename one file")
        seen[sc.name] = str(arg)
        refs.append(ScenarioRef(str(arg), sc.name, sc.model_dump(mode="json"), sc.source))
    if not refs:
        raise UserError("scenarios: name at least one scenario (`drivestack scenarios` lists them)")
    return refs


def resolve_agents(agents: str | Iterable[str]) -> list[str]:
    """Agent names from `A,B` (or a list); each must be registered or an importable spec."""
    names = [a.strip() for a in (agents.split(",") if isinstance(agents, str) else agents) if a.strip()]
    if not names:
        raise UserError("--agent: name at least one agent; available: " + ", ".join(AGENTS))
    for name in names:
        if is_spec(name):
            agent_class(name)  # import it here, so a bad spec fails before any episode runs
        elif name not in AGENTS:
            from drivestack.agents import make_agent

            make_agent(name)  # raises the registry's one-line error with a suggestion
    if len(set(names)) != len(names):
        raise UserError(f"--agent: {','.join(names)} names an agent twice")
    return names


def check_counts(seeds: int, workers: int | None) -> int:
    if not 1 <= seeds <= MAX_SEEDS:
        raise UserError(f"--seeds: {seeds} is out of range; use 1 to {MAX_SEEDS} (seeds 0 … K−1 are run)")
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers: {workers} is out of range; use 1 to {MAX_WORKERS}")
    return workers


def plan(scenarios: list[ScenarioRef], agents: list[str], seeds: int) -> list[Task]:
    """Every episode, in the order of the results: agent, then scenario, then seed."""
    return [Task(sc, a, absolute_spec(a) if is_spec(a) else a, s) for a in agents for sc in scenarios for s in range(seeds)]


# ---- one episode, in a worker ----------------------------------------------------------------------

def run_task(task: Task) -> dict:
    """Run one episode; never raises: a failure becomes a record with outcome `error`."""
    from drivestack.agents import make_agent
    from drivestack.runner import run_episode
    from sim.scenario import parse_scenario

    wall0 = time.perf_counter()
    try:
        sc = parse_scenario(dict(task.scenario.data), task.scenario.source)
        record = run_episode(sc, make_agent(task.agent_spec), task.seed)
    except Exception as e:  # noqa: BLE001 — any bug in an agent or the stack is this episode's outcome
        return error_record(task, e, time.perf_counter() - wall0)
    record["agent"] = task.agent  # the name as given, so `drivestack run ... --agent` replays it
    record["error"] = None
    return record


def error_record(task: Task, exc: BaseException, wall: float) -> dict:
    """An episode that raised: it scores 0 (as a crashed agent's route does on the CARLA leaderboard)."""
    message = " ".join(f"{type(exc).__name__}: {exc}".split())
    rec = {k: None for k in COLUMNS}
    rec.update(scenario=task.scenario.name, agent=task.agent, seed=task.seed, outcome="error",
               error=message[:500], route_completion=0.0, driving_score=0.0, collisions=[], wall_s=round(wall, 3))
    return rec


# ---- backends ----------------------------------------------------------------------------------------

def run_local(tasks: list[Task], workers: int, on_result: Callable[[Task, dict], None]) -> None:
    """One process per worker (spawned, so each starts clean); in this process when workers == 1."""
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            on_result(task, run_task(task))
        return
    with process_pool(min(workers, len(tasks))) as pool:
        futures = {pool.submit(run_task, task): task for task in tasks}
        for fut in as_completed(futures):
            try:
                record = fut.result()
            except Exception as e:  # noqa: BLE001 — a worker that died (not an exception in it) breaks the pool:
                record = error_record(futures[fut], e, 0.0)  # what was unfinished is an error; --resume reruns it
            on_result(futures[fut], record)


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when a Ray address does not answer (ray.init would wait long)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address: {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"--ray-address: cannot reach Ray at {address} ({e.strerror or e}); start one with "
                        "`ray start --head` or leave out --ray-address for a local Ray") from None


def check_ray(address: str | None) -> None:
    """Ray is installed and the cluster answers: checked before anything runs."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray is imported: no telemetry
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("--backend ray: Ray is not installed; `pip install 'drivestack[ray]'`") from None
    if address:
        _check_reachable(address)


def run_ray(tasks: list[Task], workers: int | None, on_result: Callable[[Task, dict], None],
            address: str | None = None) -> None:
    """Ray tasks on the cluster at `address`, or on a local Ray with `workers` CPUs.

    At most `workers` tasks are in flight (on a cluster, by default, as many as it has CPUs).
    Ray is kept off the network: no usage stats, no dashboard, a small object store.
    """
    check_ray(address)
    import ray

    workers_default = workers is None
    workers = workers or max(1, os.cpu_count() or 1)
    started = not ray.is_initialized()
    if started:
        opts = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            if address:
                ray.init(address=address, **opts)
            else:
                ray.init(num_cpus=workers, object_store_memory=RAY_OBJECT_STORE, **opts)
        except Exception as e:  # noqa: BLE001 — Ray raises many types; the user needs one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            where = f" at {address}" if address else ""
            raise UserError(f"--backend ray: could not start or join Ray{where}: {first}") from None
    try:
        if address and workers_default:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        queue = list(tasks)
        pending: dict = {}
        while queue or pending:
            while queue and len(pending) < workers:
                task = queue.pop(0)
                pending[remote.remote(task)] = task
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as e:  # noqa: BLE001 — a worker that died is this episode's error
                    record = error_record(task, e, 0.0)
                on_result(task, record)
    finally:
        if started:
            ray.shutdown()


# ---- outputs -------------------------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return repr(value) if isinstance(value, float) else str(value)


def write_results_csv(path: Path, records: list[dict]) -> Path:
    """One row per episode; lists and dicts as JSON, booleans as true/false, None as empty."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in records:
            w.writerow([_cell(r.get(k)) for k in COLUMNS])
    return path


def read_done(path: Path) -> dict[tuple[str, str, int], dict]:
    """Finished episodes in an episodes.jsonl (errors are left out, so they run again)."""
    done = {}
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short when the run was stopped
        if r.get("outcome") != "error":
            done[(r["scenario"], r["agent"], int(r["seed"]))] = r
    return done


def evaluate(scenarios: Iterable[str], agents: str | Iterable[str], seeds: int, *, workers: int | None = None,
             backend: str = "local", out: Path | str | None = None, resume: Path | str | None = None,
             ray_address: str | None = None, on_plan: Callable[[int, int], None] | None = None,
             on_result: Callable[[dict], None] | None = None, report: bool = True, videos: int = 0,
             on_video: Callable[[dict], None] | None = None) -> EvalResult:
    """Run every (scenario, seed, agent) episode and write results.csv, summary.json and report.md.

    `on_plan(total, already_done)` is called once before running, `on_result(record)` after each
    episode (both for progress bars). With `resume`, episodes already in its episodes.jsonl are
    not run again (except errors) and the outputs go to that folder. With `videos=K`, the K worst
    episodes of each agent are replayed and recorded to OUT/videos/ (MP4) and report.md links them;
    `on_video(row)` is called after each.
    """
    from drivestack.aggregate import summarize

    if backend not in BACKENDS:
        raise UserError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if ray_address and backend != "ray":
        raise UserError("--ray-address: needs --backend ray")
    on_cluster = backend == "ray" and bool(ray_address) and workers is None
    workers = check_counts(seeds, workers)
    if videos < 0:
        raise UserError(f"--videos: {videos} must be ≥ 0")
    agent_names = resolve_agents(agents)
    refs = resolve_scenarios(scenarios)
    if resume is not None:
        resume = Path(resume)
        if out is not None and Path(out).resolve() != resume.resolve():
            raise UserError(f"--resume {resume} and --out {out} differ; --resume writes to the folder it resumes")
        if not (resume / "episodes.jsonl").exists():
            raise UserError(f"--resume: {resume} holds no episodes.jsonl from an earlier `drivestack eval`")
        out = resume
    if backend == "ray":
        check_ray(ray_address)
    out = Path(out) if out is not None else Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)

    tasks = plan(refs, agent_names, seeds)
    wanted = {t.key for t in tasks}
    jsonl = out / "episodes.jsonl"
    done = {k: r for k, r in read_done(jsonl).items() if k in wanted} if resume is not None else {}
    if resume is None and jsonl.exists():
        jsonl.unlink()  # a fresh run in an old folder starts over
    todo = [t for t in tasks if t.key not in done]
    config = {"scenarios": [r.arg for r in refs], "agents": agent_names, "seeds": seeds, "backend": backend,
              "workers": "cluster CPUs" if on_cluster else workers, "ray_address": ray_address,
              "episodes": len(tasks), "resumed": len(done),
              # switches the workers inherit (the detector's backend and zoom pass), so a run says how it ran
              "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith("DRIVESTACK_")}}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "scenarios").mkdir(exist_ok=True)
    for r in refs:
        (out / "scenarios" / f"{r.name}.yaml").write_text(yaml.safe_dump(r.data, sort_keys=False))
    if on_plan is not None:
        on_plan(len(tasks), len(done))

    results = dict(done)
    wall0 = time.perf_counter()
    with open(jsonl, "a") as log:
        def collect(task: Task, record: dict) -> None:
            results[task.key] = record
            log.write(json.dumps(record) + "\n")
            log.flush()
            if on_result is not None:
                on_result(record)

        if backend == "ray":
            run_ray(todo, None if on_cluster else workers, collect, ray_address)
        else:
            run_local(todo, workers, collect)
    wall = time.perf_counter() - wall0

    records = [results[t.key] for t in tasks]
    summary = summarize(records, agent_names, [r.name for r in refs])
    write_results_csv(out / "results.csv", records)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    video_rows = []
    if videos:
        from drivestack.video import record_worst

        video_rows = record_worst(records, tasks, videos, out / "videos", on_video)
    if report:
        from drivestack.report import write_report

        write_report(out, records, summary, {**config, "scenario_args": {r.name: r.arg for r in refs}, "wall_s": wall,
                                             "videos": video_rows})
    return EvalResult(records, summary, out, ran=len(todo), wall_s=wall, config=config, videos=video_rows)
