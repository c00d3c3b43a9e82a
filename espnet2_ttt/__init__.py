"""espnet2_ttt: Text-to-Talk (TtT) as an ESPnet plugin.

Importing the package first makes espnet's imports offline-safe (:mod:`espnet2_ttt.user_cache`).
"""
from espnet2_ttt.user_cache import provide_nltk_placeholders

provide_nltk_placeholders()
