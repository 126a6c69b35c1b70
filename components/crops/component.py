"""KFP interface of the crops step."""

from kfp.dsl import Dataset, Output

from cityseg.components import container_images


# The crops step needs what the shard step needs (OpenCV, the TFRecord writer), so it runs in its image.
@container_images.component
def crops(
    *,
    cityscapes: str,
    fingerprint: str,
    shards: Output[Dataset],
    size: int,
    margin: float,
    min_box: int,
    min_pixels: int,
    min_visible: float,
    num_shards: int,
    workers: int,
) -> None:
    """Write square crops of every object instance as TFRecord shards per split, with manifest.json.

    Args:
        cityscapes: Cityscapes root, folder of the official zips, or gs:// prefix (with instanceIds).
        fingerprint: the source's fingerprint; only in the cache key, so new data is cropped again.
        shards: {split}-{i:05d}-of-{n:05d}.tfrecord files and manifest.json.
        size: side of the stored square crops.
        margin: context around each box, as a share of its longer side.
        min_box: instances with a smaller visible box (longer side, pixels) are dropped.
        min_pixels: instances with fewer visible pixels are dropped.
        min_visible: instances with a smaller visible share of their polygon are dropped.
        num_shards: shards per split.
        workers: parallel worker processes.
    """
    params = dict(locals())
    from cityseg.components.crops.config import CropsConfig
    from cityseg.components.crops.core import write_crops
    from cityseg.components.kfp_params import step_config

    config = step_config(
        CropsConfig, params, rename={"num_shards": "shards"}, others=("fingerprint",), out=shards.path
    )
    manifest = write_crops(config)
    shards.metadata["content_hash"] = manifest["content_hash"]
    shards.metadata["class_counts"] = {
        split: entry["class_counts"] for split, entry in manifest["splits"].items()
    }
