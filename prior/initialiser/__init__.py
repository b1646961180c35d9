"""Learned starts for the fitter: the single-frame initialiser (`model`, its training views
`data`, `python -m prior.initialiser.train`) and the temporal lifter over video windows
(`temporal_lifter`, `temporal_data`, `python -m prior.initialiser.temporal_train`)."""
