"""YAML defaults for fitting (fit.yaml) and prior training (train_prior.yaml), shipped as package data,
and the one loader that reads and checks them (`configs.loader`)."""

from configs.loader import ConfigError, Rule, load_config, save_config

__all__ = ["ConfigError", "Rule", "load_config", "save_config"]
