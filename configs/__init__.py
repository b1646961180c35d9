"""YAML defaults for fitting (fit.yaml) and prior training (train_prior.yaml), shipped as package data."""
