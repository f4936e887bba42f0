"""Shared test settings: hypothesis is derandomised so every run checks the same examples."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "gradmath",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("gradmath")
