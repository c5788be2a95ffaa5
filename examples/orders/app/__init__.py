"""The example service deployed blue/green: a small orders API on the shared PostgreSQL."""
