"""Pure document filters and annotators for Japanese text. Never imports Beam.

Entry point: `filters.chain.FilterChain(cfg)` (config reference in docs/filters.md).
"""
from filters.config import FilterConfigError

__all__ = ["FilterConfigError"]
