"""What every package may import without torch or a body model: the YAML defaults for fitting
(fit.yaml) and training (train_*.yaml), shipped as package data, with the one loader that reads
and checks them (`configs.loader`), and the atomic file writers (`configs.files`)."""

from configs.loader import ConfigError, Rule, command_line_config, load_config, save_config

__all__ = ["ConfigError", "Rule", "command_line_config", "load_config", "save_config"]
