"""Datasets, losses (attention transfer, KD), the trainer and run directories."""
