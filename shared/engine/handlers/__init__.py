"""Handlers: the functions that apply actions. `table` names the handler of each action type."""
