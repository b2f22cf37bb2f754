"""drivestack: the application — CLI, episode runner, agents and reports."""

__version__ = "0.1.0"
