# Corpus locations.  The embedded corpus is generated (local/make_corpus.py) and needs none.
# Set these to use real corpora with `./run.sh --corpus librispeech|aishell|librispeech_aishell`.
LIBRISPEECH=${LIBRISPEECH:-}   # directory holding LibriSpeech/<subset>/<spk>/<chapter>/*.flac
AISHELL=${AISHELL:-}           # directory holding data_aishell/{wav,transcript}
