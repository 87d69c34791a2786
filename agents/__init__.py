"""Faust agents, one per pipeline step; each module's docstring says Consumes/Produces/Tables."""
