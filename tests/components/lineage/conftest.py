"""The validate tests' Cityscapes source fixture, shared here."""

from tests.components.validate.conftest import source  # noqa: F401
