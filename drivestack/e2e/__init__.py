"""The end-to-end baseline: a PilotNet-sized, command-conditioned network from camera to control.

model.py     the network, the image preprocessing and the checkpoint format
scenarios.py procedurally randomised training scenarios (plus the shipped ones at unseen seeds)
record.py    driving episodes that record frames: expert demos with DART noise, DAgger rollouts
dataset.py   the on-disk dataset (manifest + one .npz per episode), loading, splits, checks
train.py     behaviour cloning, DAgger rounds, open-loop and closed-loop metrics

torch is imported only by the modules that need it, so `drivestack --help` stays fast.
"""
