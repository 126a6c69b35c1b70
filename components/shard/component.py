"""KFP interface of the shard step."""

from kfp.dsl import Dataset, Input, Output

from cityseg.components import container_images


@container_images.component("shard")
def shard(
    *,
    cityscapes: str,
    fingerprint: str,
    categories: Input[Dataset],
    shards: Output[Dataset],
    num_shards: int,
    height: int,
    width: int,
    select_fraction: float,
) -> None:
    """Write TFRecord shards per split (DeepLab keys) with manifest.json and TFDS metadata.

    Args:
        cityscapes: the Cityscapes source of the images.
        fingerprint: the source's fingerprint; only in the cache key, so new data is sharded again.
        categories: the category masks from the remap step.
        shards: {split}-{i:05d}-of-{n:05d}.tfrecord files and manifest.json.
        num_shards: shards per split.
        height: stored image height.
        width: stored image width.
        select_fraction: share of the source's train frames written as the select split.
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.shard.config import ShardConfig
    from cityseg.components.shard.core import write_shards

    config = step_config(
        ShardConfig,
        params,
        rename={"num_shards": "shards"},
        others=("fingerprint",),
        categories=categories.path,
        out=shards.path,
    )
    manifest = write_shards(config)
    shards.metadata["content_hash"] = manifest["content_hash"]
    shards.metadata["examples"] = {split: info["examples"] for split, info in manifest["splits"].items()}
