"""The store: the schema (models), engine setup, and the hot-path writers."""
