"""Federated training on Flower: client handlers, the coordinator loop and the apps."""
