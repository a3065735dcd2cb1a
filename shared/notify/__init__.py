"""Notifications: Adaptive Cards for Microsoft Teams (`cards`) and their delivery (`teams`).

Nothing here changes governance state; delivery is best effort and never raises.
"""
