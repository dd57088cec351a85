"""Deterministic fault simulator for the PBFT core: `python -m consensus.sim --seeds N`."""

from .run import run_seed
from .scenario import Scenario
from .world import SeedResult, World

__all__ = ["run_seed", "Scenario", "SeedResult", "World"]
