"""Delivery connectors: the built-ins and the protocol integrators implement.

Connectors are found through the ``exchange.connectors`` entry-point group and built fresh
for each delivery from that subscription's own configuration.
"""
