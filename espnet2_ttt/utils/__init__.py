"""Recipe utilities: Kaldi-style data files and dirs, the run.pl job runner, scoring.

Shell wrappers for them live in egs/ttt_bilingual/utils.
"""
