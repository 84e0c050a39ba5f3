"""A synthetic instance for benchmarks and demos: ``townsquare seed``."""

from townsquare.seed.instance import SEED_PASSWORD, SeedReport, seed_instance
from townsquare.seed.world import SeedSize

__all__ = ["SEED_PASSWORD", "SeedReport", "SeedSize", "seed_instance"]
