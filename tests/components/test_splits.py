import pytest

from cityseg.components.defaults import RECIPE
from cityseg.components.splits import SELECT, TRAIN, assign_split
from cityseg.components.synth.core import frame_stem, split_cities

IDS = [f"city{c}/city{c}_000000_{f:06d}" for c in range(10) for f in range(1000)]


def test_only_train_frames_are_drawn_into_select():
    assert {assign_split(split, "aachen/aachen_000000_000000", 0.99) for split in ("val", "test")} == {
        "val",
        "test",
    }
    assert {assign_split(TRAIN, frame, 0.0) for frame in IDS} == {TRAIN}


def test_select_takes_its_share_and_a_larger_share_only_adds_frames():
    small = {frame for frame in IDS if assign_split(TRAIN, frame, 0.1) == SELECT}
    large = {frame for frame in IDS if assign_split(TRAIN, frame, 0.2) == SELECT}
    assert abs(len(small) / len(IDS) - 0.1) < 0.01 and abs(len(large) / len(IDS) - 0.2) < 0.01
    assert small < large


def test_a_frame_keeps_its_split_whatever_other_frames_exist():
    # The draw is a function of the id alone: the same in any order, any company and any process.
    first = [assign_split(TRAIN, frame, 0.15) for frame in IDS]
    assert [assign_split(TRAIN, frame, 0.15) for frame in reversed(IDS)] == first[::-1]
    assert assign_split(TRAIN, "aachen/aachen_000000_000000", 0.5) == SELECT
    assert assign_split(TRAIN, "aachen/aachen_000000_000001", 0.5) == TRAIN


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_a_share_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match=rf"select_fraction must be in \[0, 1\), got {fraction}"):
        assign_split(TRAIN, "aachen/aachen_000000_000000", fraction)


def test_the_recipe_share_draws_26_of_the_synthetic_sets_200_train_frames():
    # The figure Recipe.select_fraction's comment quotes.
    cities = split_cities(RECIPE.synthetic_cities)["train"]
    frames = [f"{c}/{frame_stem(c, s)}" for c in cities for s in range(RECIPE.synthetic_frames_per_city)]
    drawn = [frame for frame in frames if assign_split(TRAIN, frame, RECIPE.select_fraction) == SELECT]
    assert (len(frames), len(drawn)) == (200, 26)
