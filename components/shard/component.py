"""KFP interface of the shard step."""

from kfp.dsl import Dataset, Input, Output

from cityseg.components import images


@images.component("shard")
def shard(
    *,
    cityscapes: str,
    categories: Input[Dataset],
    shards: Output[Dataset],
    num_shards: int = 4,
    height: int = 128,
    width: int = 256,
) -> None:
    """Write TFRecord shards per split (DeepLab keys) with manifest.json and TFDS metadata.

    Args:
        cityscapes: the Cityscapes source of the images.
        categories: the category masks from the remap step.
        shards: {split}-{i:05d}-of-{n:05d}.tfrecord files and manifest.json.
        num_shards: shards per split.
        height: stored image height.
        width: stored image width.
    """
    from cityseg.components.shard.core import ShardConfig, write_shards

    manifest = write_shards(
        ShardConfig(
            cityscapes=cityscapes,
            categories=categories.path,
            out=shards.path,
            shards=num_shards,
            height=height,
            width=width,
        )
    )
    shards.metadata["content_hash"] = manifest["content_hash"]
    shards.metadata["examples"] = {split: info["examples"] for split, info in manifest["splits"].items()}
