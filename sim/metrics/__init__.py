"""Closed-loop metrics beside the CARLA driving score: nuPlan's terms and a few more.

One small module per metric, thresholds as constructor (or keyword) arguments whose defaults cite
their source; no metric reads another's state. Per-step metrics are fed at the agent rate (10 Hz)
by the world (`sim.metrics.step.StepMetrics`); episode terms are pure functions of what the
criteria and step metrics kept (`sim.metrics.summary`).

  at_fault.py       nuPlan collision types and the at-fault rule
  ttc.py            time to collision, oriented boxes under constant velocity
  direction.py      nuPlan driving-direction compliance
  speed_limit.py    nuPlan speed-limit compliance
  drivable_area.py  nuPlan drivable-area compliance
  braking.py        hard-braking events
  nuplan_score.py   nuPlan's closed-loop score (CLS) combination of the terms
"""
