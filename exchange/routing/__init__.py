"""Subscriptions and the routing of each accepted report to the ones it matches."""
