"""jcorpus pipeline: Beam graphs (curate, pack), sources, extraction, sinks, stats and the `jcorpus` CLI."""
