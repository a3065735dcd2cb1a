"""Policy engine: actions (data), the executor that applies them, and the report."""
