"""Protection of what the hub stores: secrets and personal data sealed at rest."""
