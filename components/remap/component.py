"""KFP interface of the remap step."""

from kfp.dsl import Dataset, Output

from cityseg.components import container_images


@container_images.component("remap")
def remap(cityscapes: str, fingerprint: str, categories: Output[Dataset], workers: int) -> None:
    """Remap the 34 Cityscapes label ids to the 8 categories (void, flat, ..., vehicle), one PNG per frame.

    Args:
        cityscapes: Cityscapes root, folder of the official zips, or gs:// prefix.
        fingerprint: the source's fingerprint; only in the cache key, so new data is remapped again.
        categories: {split}/{city}/{stem}_gtFine_categoryIds.png, uint8 category ids.
        workers: parallel worker processes.
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.remap.config import RemapConfig
    from cityseg.components.remap.core import remap as remap_to_categories

    config = step_config(RemapConfig, params, others=("fingerprint",), out=categories.path)
    summary = remap_to_categories(config)
    categories.metadata.update(frames=summary["frames"], pixel_share=summary["pixel_share"])
