"""Pure document filters and annotators for Japanese text. Never imports Beam."""
