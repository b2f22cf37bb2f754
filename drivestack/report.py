"""report.md and its PNG plots for an evaluation, and the side-by-side table of `compare`."""
from __future__ import annotations

import json
from pathlib import Path

from drivestack.aggregate import paired_difference

WORST = 5  # worst episodes listed per agent


def _f(x, nd: int = 1, empty: str = "–") -> str:
    return empty if x is None else f"{x:.{nd}f}"


def fmt_ci(mean, ci, nd: int = 1) -> str:
    """`mean [lo, hi]`, or the mean alone without an interval."""
    if mean is None:
        return "–"
    return f"{mean:.{nd}f}" if ci[0] is None else f"{mean:.{nd}f} [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]"


def fmt_diff(mean, ci, nd: int = 1) -> str:
    """A signed difference with its interval."""
    if mean is None:
        return "–"
    s = f"{mean:+.{nd}f}"
    return s if ci[0] is None else f"{s} [{ci[0]:+.{nd}f}, {ci[1]:+.{nd}f}]"


def _ci(block: dict, nd: int = 1) -> str:
    return fmt_ci(block["driving_score_mean"], block["driving_score_ci95"], nd)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def replay_command(scenario_arg: str, agent: str, seed: int) -> str:
    return f"drivestack run {scenario_arg} --agent {agent} --seed {seed}"


def _infractions(r: dict) -> str:
    parts = []
    for c in r.get("collisions") or []:
        parts.append(f"{c['other_type']} collision{' (at fault)' if c['at_fault'] else ''}")
    for key, label in (("red_light_violations", "red light"), ("stop_sign_violations", "stop sign")):
        if r.get(key):
            parts.append(f"{r[key]}× {label}")
    if r.get("offroad_fraction"):
        parts.append(f"off-road {r['offroad_fraction']:.2f}")
    if r.get("error"):
        parts.append(r["error"][:120].replace("|", "/"))
    return ", ".join(parts) or "–"


def plot_driving_score(summary: dict, path: Path) -> Path:
    """Grouped bars: mean driving score per scenario (and over all) per agent, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    agents = list(summary["agents"])
    scenarios = list(dict.fromkeys(s for a in agents for s in summary["agents"][a]["scenarios"]))
    groups = scenarios + ["all"]
    width = 0.8 / max(1, len(agents))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(1, len(agents)) ** 0.5 + 2), 4.0))
    x = np.arange(len(groups))
    for i, a in enumerate(agents):
        blocks = [summary["agents"][a]["scenarios"].get(s) for s in scenarios] + [summary["agents"][a]]
        means = [b["driving_score_mean"] if b and b["driving_score_mean"] is not None else 0.0 for b in blocks]
        err = np.array([[m - b["driving_score_ci95"][0], b["driving_score_ci95"][1] - m]
                        if b and b["driving_score_ci95"][0] is not None else [0.0, 0.0]
                        for m, b in zip(means, blocks)]).T
        ax.bar(x + (i - (len(agents) - 1) / 2) * width, means, width, yerr=err, capsize=3, label=a)
    ax.set_xticks(x, groups, rotation=30, ha="right")
    ax.set_ylabel("driving score (mean, 95% CI)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, framealpha=0.9, loc="lower right")
    ax.set_title("Driving score per scenario")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


INFRACTION_KINDS = [("pedestrian_collisions", "pedestrian coll."), ("vehicle_collisions", "vehicle coll."),
                    ("static_collisions", "static coll."), ("at_fault_collisions", "at-fault coll."),
                    ("red_light_violations", "red light"), ("stop_sign_violations", "stop sign"),
                    ("timeouts", "timeout"), ("blocked", "blocked"), ("route_deviations", "route deviation"),
                    ("errors", "error")]


def plot_infractions(summary: dict, path: Path) -> Path:
    """Grouped bars: how many of each infraction (and end) each agent had, over all episodes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from matplotlib.ticker import MaxNLocator

    agents = list(summary["agents"])
    width = 0.8 / max(1, len(agents))
    fig, ax = plt.subplots(figsize=(9.0, 4.0))
    x = np.arange(len(INFRACTION_KINDS))
    for i, a in enumerate(agents):
        counts = [summary["agents"][a][k] for k, _ in INFRACTION_KINDS]
        ax.bar(x + (i - (len(agents) - 1) / 2) * width, counts, width, label=a)
    ax.set_xticks(x, [label for _, label in INFRACTION_KINDS], rotation=30, ha="right")
    ax.set_ylabel("count over all episodes")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, framealpha=0.9)
    ax.set_title("Infractions and episode ends")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(out: Path, records: list[dict], summary: dict, config: dict) -> Path:
    """report.md with a table per agent, the infraction breakdown, the nuPlan terms, the worst
    episodes (with the command that replays each) and two PNG plots."""
    out = Path(out)
    args = config.get("scenario_args", {})
    agents = list(summary["agents"])
    plot_driving_score(summary, out / "driving_score.png")
    plot_infractions(summary, out / "infractions.png")
    lines = ["# drivestack evaluation", "",
             f"{len(records)} episodes: {len(args) or len(config.get('scenarios', []))} scenarios × "
             f"{config.get('seeds')} seeds (0 … {config.get('seeds', 1) - 1}) × {len(agents)} agents; backend "
             f"`{config.get('backend')}` with {config.get('workers')} workers"
             + (f", {config['wall_s']:.1f} s wall" if config.get("wall_s") is not None else "")
             + (f"; {config['resumed']} episodes resumed" if config.get("resumed") else "") + ".",
             "", "Driving score (CARLA leaderboard 2.0) = 100 × route completion × infraction penalty; "
             "intervals are 95% Student-t intervals over episodes.", ""]
    header = ["scenario", "episodes", "driving score [95% CI]", "route compl.", "penalty", "collisions (at fault)",
              "red lights", "stop signs", "off-road", "min TTC [s]", "timeouts", "blocked", "errors"]

    def row(name: str, b: dict) -> list[str]:
        return [name, str(b["episodes"]), _ci(b), _f(b["route_completion_mean"], 3), _f(b["infraction_penalty_mean"], 3),
                f"{b['collisions']} ({b['at_fault_collisions']})", str(b["red_light_violations"]),
                str(b["stop_sign_violations"]), _f(b["offroad_fraction_mean"], 3), _f(b["min_ttc_s"], 2),
                str(b["timeouts"]), str(b["blocked"]), str(b["errors"])]

    for a in agents:
        blk = summary["agents"][a]
        lines += [f"## Agent `{a}`", ""]
        lines += _table(header, [row(s, b) for s, b in blk["scenarios"].items()] + [row("**all**", blk)])
        lines.append("")
    lines += ["## Infractions", "", "![driving score](driving_score.png)", "", "![infractions](infractions.png)", ""]
    lines += _table(["agent", *[label for _, label in INFRACTION_KINDS], "collisions / km"],
                    [[a, *[str(summary["agents"][a][k]) for k, _ in INFRACTION_KINDS],
                      _f(summary["agents"][a]["collisions_per_km"], 2)] for a in agents])
    lines += ["", "## nuPlan-style terms", "",
              "Means over episodes (errors left out). TTC is under constant velocity with oriented boxes, bound "
              "0.95 s; the nuPlan score is the CLS combination with route progress in place of expert progress.", ""]
    lines += _table(["agent", "at-fault coll.", "drivable area", "driving direction", "progress", "TTC within bound",
                     "time TTC < 0.95 s", "speed limit", "comfortable", "uncomfortable outside emergencies", "hard braking", "time to goal [s]",
                     "nuPlan score"],
                    [[a, str(b["at_fault_collisions"]), _f(b["drivable_area_compliance_mean"], 3),
                      _f(b["driving_direction_compliance_mean"], 3), _f(b["progress_mean"], 3),
                      _f(b["ttc_within_bound_rate"], 3), _f(b["ttc_below_fraction_mean"], 4),
                      _f(b["speed_limit_compliance_mean"], 3), _f(b["comfortable_rate"], 3),
                      _f(b.get("uncomfortable_nonemergency_episodes"), 0), str(b["hard_braking_events"]),
                      _f(b["time_to_goal_s_mean"], 1), _f(b["nuplan_score_mean"], 3)]
                     for a, b in ((a, summary["agents"][a]) for a in agents)])
    lines += ["", "## Worst episodes", "", "Replay any of them: the same scenario, agent and seed give the same run.", ""]
    rows = []
    for a in agents:
        mine = sorted((r for r in records if r["agent"] == a), key=lambda r: (r["driving_score"], r["scenario"], r["seed"]))
        for r in mine[:WORST]:
            rows.append([a, r["scenario"], str(r["seed"]), r["outcome"], _f(r["driving_score"], 1), _infractions(r),
                         f"`{replay_command(args.get(r['scenario'], r['scenario']), a, r['seed'])}`"])
    lines += _table(["agent", "scenario", "seed", "outcome", "score", "infractions", "replay"], rows)
    lines.append("")
    if config.get("videos"):  # `eval --videos worst:K` (drivestack/video.py)
        lines += ["## Videos", "", "The worst episodes of each agent, replayed and recorded as the viewer shows them "
                  "(map, plan, camera, lidar, radar, HUD)." + ("" if all(v["replay_matches"] for v in config["videos"])
                                                               else " **Some replays scored differently.**"), ""]
        lines += _table(["agent", "scenario", "seed", "outcome", "score", "video"],
                        [[v["agent"], v["scenario"], str(v["seed"]), v["outcome"], _f(v["driving_score"], 1),
                          f"[{Path(v['video']).name}]({v['video']})"] for v in config["videos"]])
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def compare_table(records: list[dict], summary: dict, agents: list[str]) -> dict:
    """Side by side: per scenario and over all, each agent's mean driving score, and each later
    agent minus the first (the reference), paired by scenario and seed."""
    ref, others = agents[0], agents[1:]
    scenarios = list(dict.fromkeys(r["scenario"] for r in records))
    rows = []
    for sc in scenarios + [None]:
        blk = {ag: summary["agents"][ag] if sc is None else summary["agents"][ag]["scenarios"].get(sc) for ag in agents}
        diffs = {ag: paired_difference(records, ref, ag, "driving_score", sc) for ag in others}
        rows.append({"scenario": sc or "all",
                     "agents": {ag: {"mean": b["driving_score_mean"], "ci95": b["driving_score_ci95"]} for ag, b in blk.items()},
                     "diffs": diffs, "pairs": min(d["pairs"] for d in diffs.values())})
    metrics = []
    for key, label in (("route_completion", "route completion"), ("infraction_penalty", "infraction penalty"),
                       ("at_fault_collisions", "at-fault collisions / episode"), ("nuplan_score", "nuPlan score"),
                       ("ttc_below_fraction", "time with TTC < 0.95 s")):
        vals = {ag: [r[key] for r in records if r["agent"] == ag and r.get(key) is not None] for ag in agents}
        metrics.append({"metric": label, "key": key, "agents": {ag: (sum(v) / len(v) if v else None) for ag, v in vals.items()},
                        "diffs": {ag: paired_difference(records, ref, ag, key) for ag in others}})
    return {"agents": agents, "reference": ref, "difference": f"each agent − {ref}, paired by scenario and seed",
            "driving_score": rows, "metrics": metrics}


def compare_rows(table: dict) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """The comparison as text: (header, rows) of the driving score per scenario, then of the other terms."""
    ref, others = table["reference"], table["agents"][1:]
    diff_cols = [f"{ag} − {ref} [95% CI]" for ag in others]
    score = [[r["scenario"], *(fmt_ci(v["mean"], v["ci95"]) for v in r["agents"].values()),
              *(fmt_diff(d["mean"], d["ci95"]) for d in r["diffs"].values()), str(r["pairs"])]
             for r in table["driving_score"]]
    terms = [[m["metric"], *(_f(v, 3) for v in m["agents"].values()),
              *(fmt_diff(d["mean"], d["ci95"], 3) for d in m["diffs"].values())] for m in table["metrics"]]
    return (["scenario", *table["agents"], *diff_cols, "pairs"], score, ["metric", *table["agents"], *diff_cols], terms)


def compare_markdown(table: dict) -> str:
    score_head, score, terms_head, terms = compare_rows(table)
    lines = [f"# {' vs '.join(table['agents'])}", "", f"Difference: {table['difference']}; 95% Student-t intervals. "
             "An interval that excludes 0 is a difference the seeds resolve.", "", "## Driving score", ""]
    lines += _table(score_head, score)
    lines += ["", "## Other terms (all scenarios)", ""]
    lines += _table(terms_head, terms)
    return "\n".join(lines) + "\n"


def write_compare(out: Path, table: dict) -> Path:
    (Path(out) / "compare.json").write_text(json.dumps(table, indent=2))
    path = Path(out) / "compare.md"
    path.write_text(compare_markdown(table))
    return path
