"""Numerical precision: float64 is opt-in, one call, never flipped by an import."""

from __future__ import annotations

import jax

__all__ = ["enable_x64", "x64_enabled"]


def enable_x64(enabled: bool = True) -> None:
    """Switch JAX to float64 (recommended for physics; the CLI and the scripts call this)."""
    jax.config.update("jax_enable_x64", bool(enabled))


def x64_enabled() -> bool:
    return bool(jax.config.jax_enable_x64)
