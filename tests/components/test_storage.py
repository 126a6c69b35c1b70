import pytest

from cityseg.components import storage


def test_local_write_is_atomic_and_round_trips(tmp_path):
    target = tmp_path / "a" / "b.bin"
    storage.write_bytes(target, b"payload")
    assert storage.read_bytes(target) == b"payload"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]


def test_gcs_round_trip_listing_and_tree_copy(gcs_emulator, tmp_path):
    bucket = gcs_emulator()
    storage.write_text(f"{bucket}/x/one.txt", "1")
    storage.write_text(f"{bucket}/x/sub/two.txt", "2")
    assert storage.read_text(f"{bucket}/x/one.txt") == "1"
    assert list(storage.list_files(f"{bucket}/x")) == [f"{bucket}/x/one.txt", f"{bucket}/x/sub/two.txt"]
    assert storage.exists(f"{bucket}/x") and not storage.exists(f"{bucket}/nothing")
    storage.copy_tree(f"{bucket}/x", tmp_path / "down")
    assert (tmp_path / "down" / "sub" / "two.txt").read_text() == "2"
    storage.copy_tree(tmp_path / "down", f"{bucket}/up")
    assert storage.read_text(f"{bucket}/up/sub/two.txt") == "2"


def test_missing_gcs_object_names_the_uri(gcs_emulator):
    bucket = gcs_emulator()
    with pytest.raises(FileNotFoundError, match=f"{bucket}/missing.txt"):
        storage.read_bytes(f"{bucket}/missing.txt")


def test_uri_without_bucket_is_refused():
    with pytest.raises(ValueError, match="needs a bucket"):
        storage.split_gcs("gs:///x")


def test_copy_tree_from_a_dot_relative_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage.write_text("x/sub/a.txt", "a")
    assert storage.copy_tree("./x", "y") == ["y/sub/a.txt"]
    assert (tmp_path / "y" / "sub" / "a.txt").read_text() == "a"
