"""Perception: the fused multitask detector, lifting to 3D, and tracking (sensors-only inputs).

May import sim's public types (sim.types, sim.map, sim.route), never the world or its actors.
"""
