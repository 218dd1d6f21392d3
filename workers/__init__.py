"""The hub's background work: broker set-up and the actors that run jobs."""
