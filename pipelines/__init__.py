"""Batch jobs built on the shared predictor: the archive job (:mod:`pipelines.archive`) and films
(:mod:`pipelines.video`). Nothing here imports :mod:`services`."""
