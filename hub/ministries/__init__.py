"""Sectoral ministry systems: hand-off of dossiers, intake of their results, polling."""
