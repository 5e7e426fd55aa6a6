"""Shard formats, packing, the streaming reader and the lean MPI trainer."""
