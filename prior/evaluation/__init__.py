"""Pose-prior evaluation without Lightning: metrics, fitting tasks, baselines, joint limits and
the suite (`python -m prior.evaluation.evaluate`)."""
