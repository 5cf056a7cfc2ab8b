"""Scale-out (DESIGN.md): the ``tf.distribute`` strategy a training run uses, chosen by ``--distribute``.

- ``none``: TensorFlow's default strategy, one device (all local CPU cores).
- ``mirrored``: ``MirroredStrategy``, synchronous data parallelism over every local GPU (the CPU when there is
  none): each step splits the config's ``batch_size`` over the replicas and sums their gradients.
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` over the cluster that the ``TF_CONFIG`` environment variable
  describes; every worker runs the same command and only the chief writes the run folder.

The recipe does not change with the strategy: ``batch_size`` stays the global batch, so a run on one machine and
the same run on several see the same number of plates per step.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from training.config import ConfigError

STRATEGIES = ("none", "mirrored", "multi-worker")


def make_strategy(name: str = "none") -> tf.distribute.Strategy:
    """The strategy called ``name``; create it before any other TensorFlow work of the process (multi-worker
    needs that).

    Raises:
        ConfigError: an unknown name, or multi-worker without a usable ``TF_CONFIG``.
    """
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        try:
            spec = json.loads(os.environ.get("TF_CONFIG", ""))
            ok = bool(spec["cluster"]) and "type" in spec["task"]
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                "--distribute multi-worker needs TF_CONFIG, e.g. "
                '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: always, except on a multi-worker cluster's other workers (the
    chief is the ``chief`` task, else worker 0)."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def check_batch_split(batch_size: int, replicas: int) -> None:
    """Check that the global batch splits evenly over the replicas.

    Raises:
        ConfigError: it does not.
    """
    if batch_size % replicas:
        raise ConfigError(
            f"batch_size {batch_size} does not split over {replicas} replicas: make it a multiple of {replicas}"
        )


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` (global batches) split over the replicas; on several workers each reads its own share of the
    elements (the data lives in memory, so sharding by file does not apply)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def check_same_step(strategy: tf.distribute.Strategy, step: int) -> None:
    """On a multi-worker cluster, check that every worker resumes at the same step (a worker that does not see the
    chief's checkpoint would start afresh and train out of step).

    Raises:
        ConfigError: the workers disagree.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    # ReduceOp has only SUM and MEAN: the steps are all equal exactly when n * sum(step^2) == sum(step)^2
    mine = strategy.run(lambda: tf.constant([step, step * step, 1], tf.float64))
    total, squares, n = strategy.reduce("SUM", mine, axis=None).numpy()
    if n * squares != total * total:
        raise ConfigError(
            f"the workers resume at different steps (this one at {step}, their mean {total / n:g}): every worker "
            "needs the run folder's checkpoint/ and state.json (shared storage, or a copy of the chief's)"
        )
