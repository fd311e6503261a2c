"""samverkan: the calendar of cooperation between Swedish schools and social services."""

__version__ = "0.1.0"
