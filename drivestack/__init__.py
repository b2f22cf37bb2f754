"""drivestack: the application — CLI, episode runner, agents and reports."""

__version__ = "0.1.0"


def _register_gym_env() -> None:
    """`gymnasium.make("drivestack/Drive-v0", ...)` works once drivestack is imported (the class loads lazily)."""
    try:
        from gymnasium.envs.registration import register, registry
    except ImportError:  # gymnasium is a dependency, but the rest of drivestack does not need it
        return
    if "drivestack/Drive-v0" not in registry:
        register(id="drivestack/Drive-v0", entry_point="drivestack.gym_env:DriveEnv")


_register_gym_env()
