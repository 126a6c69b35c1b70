"""KFP interface of the remap step."""

from kfp.dsl import Dataset, Output

from cityseg.components import images


@images.component("remap")
def remap(cityscapes: str, categories: Output[Dataset], workers: int = 2) -> None:
    """Remap the 34 Cityscapes label ids to the 8 categories (void, flat, ..., vehicle), one PNG per frame.

    Args:
        cityscapes: Cityscapes root, folder of the official zips, or gs:// prefix.
        categories: {split}/{city}/{stem}_gtFine_categoryIds.png, uint8 category ids.
        workers: parallel worker processes.
    """
    from cityseg.components.remap.core import RemapConfig
    from cityseg.components.remap.core import remap as remap_to_categories

    summary = remap_to_categories(RemapConfig(cityscapes=cityscapes, out=categories.path, workers=workers))
    categories.metadata.update(frames=summary["frames"], pixel_share=summary["pixel_share"])
