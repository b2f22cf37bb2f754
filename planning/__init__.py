"""Planning: route commands, the behaviour state machine, prediction and the Frenét lattice planner.

May import sim's public types (sim.types, sim.map, sim.route), never the world or its actors.
"""
