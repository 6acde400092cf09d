"""confhub's public surface: what ``import confhub`` promises (STYLE.md habit 2)."""

from __future__ import annotations

import confhub
from confhub import errors


def test_all_is_sorted() -> None:
    assert confhub.__all__ == sorted(confhub.__all__)


def test_everything_in_all_is_importable() -> None:
    for name in confhub.__all__:
        assert hasattr(confhub, name), name


def test_public_names_of_design_are_exported() -> None:
    design = ["open", "NotFound", "VersionConflict", "ValidationFailed", "InvalidName",
              "TooLarge", "TenantExists", "Unauthorized", "Forbidden", "Gone", "Unavailable",
              "ConfhubError", "Entry", "Version", "Change", "Resolved", "Snapshot",
              "ValidationReport", "Schema"]
    assert set(design) <= set(confhub.__all__)


def test_every_error_is_a_confhub_error_with_status_and_exit_code() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type):
            assert issubclass(cls, confhub.ConfhubError)
            assert 400 <= cls.http_status <= 599 and cls.exit_code in range(1, 6)
            assert errors.error_from_code(cls.code, "m").__class__ is cls


def test_errors_subclass_matching_builtins() -> None:
    assert issubclass(confhub.NotFound, LookupError)
    assert issubclass(confhub.InvalidName, ValueError)


def test_error_body_shape() -> None:
    body = confhub.VersionConflict("stale", current_version=3).to_dict()
    assert body == {"error": {"code": "version_conflict", "message": "stale",
                              "details": {"current_version": 3}}}
