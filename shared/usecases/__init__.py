"""Use cases: what a trigger or a CLI verb runs, wired to the gateway and the executor."""
