"""Drivers behind one `Agent` protocol, selected by name with `--agent`."""
from __future__ import annotations

import difflib

from drivestack.agents.autopilot import AutopilotAgent
from drivestack.agents.expert import ExpertAgent
from drivestack.agents.modular import ModularAgent
from drivestack.agents.e2e import E2EAgent, E2EMeanAgent
from drivestack.agents.base import Agent
from drivestack.agents.spec import agent_class, is_spec
from drivestack.errors import UserError

AGENTS: dict[str, type] = {"autopilot": AutopilotAgent, "expert": ExpertAgent, "modular": ModularAgent,
                          "e2e": E2EAgent, "e2e-mean": E2EMeanAgent}


def make_agent(name: str, controller: str | None = None) -> Agent:
    """A registered agent by name, or any class named `module:Class` / `file.py:Class` (agents/spec.py).

    `controller` ("mpc" | "pid") selects the expert's tracker; None keeps the agent's default."""
    if is_spec(name):
        return agent_class(name)()
    if name not in AGENTS:
        close = difflib.get_close_matches(name, list(AGENTS), n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise UserError(f"--agent: unknown agent {name!r}; {hint}available: {', '.join(AGENTS)}")
    if controller is not None:
        if name != "expert":
            raise UserError(f"--controller applies to the expert agent only, not {name!r}")
        return AGENTS[name](controller=controller)
    return AGENTS[name]()


__all__ = ["AGENTS", "Agent", "make_agent"]
