"""Parts of bench/fault_injection.py: valid fixtures, mutations, fault families, the forked runner, kill and archive sections."""
