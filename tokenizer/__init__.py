"""Morphological analysis, shingling, SentencePiece training and evaluation. Never imports Beam."""
