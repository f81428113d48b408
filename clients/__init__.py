"""AUREON's Flower ClientApp."""
