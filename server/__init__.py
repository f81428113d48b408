"""AUREON's Flower ServerApp."""
