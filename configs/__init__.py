"""What every package may import without torch or a body model: the YAML defaults for fitting
(fit.yaml) and training (train_*.yaml), shipped as package data, with the one loader that reads
them and checks them against their schemas (`configs.loader`; the trainers' schemas in
`configs.training`), and the atomic file writers (`configs.files`)."""

from configs.loader import ConfigError, command_line_config, load_config, save_config, setting

__all__ = ["ConfigError", "command_line_config", "load_config", "save_config", "setting"]
