"""The bottom layer: errors, settings, clock, logs, files, dates. Imports nothing of ours."""
