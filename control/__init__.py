"""Control: the vehicle model's MPC (CasADi) and the fallback controllers.

The import name `control` is also python-control's; install the two in separate environments.
The vehicle model itself lives in sim.vehicle_model and is shared with the simulator.
"""
