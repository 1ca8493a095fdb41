"""The options of a Memory on object storage: ``backend_options={...}``, checked once."""

from __future__ import annotations

import dataclasses
from typing import Any

from forklift.errors import ConfigurationError

__all__ = ["StoreOptions"]


@dataclasses.dataclass(frozen=True)
class StoreOptions:
    """``Memory(..., backend_options={...})`` for an object store; all optional.

    ``part_size``: 8 MiB, the part size of the AWS CLI and s3fs (S3's minimum is 5 MiB);
    ``concurrency``: parts in flight per transfer (8, as s3fs's default). Neither was tuned
    on real object storage; on moto's loopback server (one Python process) parallel parts
    neither help nor hurt: a 64 MB entry loads in 1.42 s with 1 part in flight, 1.51 s with
    8 (medians of 4, interleaved, loaded 2-core machine).
    """

    storage_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    strict: bool = False
    lease_seconds: float = 30.0
    retry_after: float = 30.0
    part_size: int = 8 * 1024 * 1024
    concurrency: int = 8
    allowed_globals: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, options: dict[str, Any] | None) -> StoreOptions:
        given = dict(options or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown backend_options {unknown} for an object-storage cache; known: "
                f"{sorted(known)}"
            )
        if not isinstance(given.get("storage_options", {}), dict):
            raise ConfigurationError("backend_options['storage_options'] must be a dict")
        if given.get("allowed_globals") is not None:
            given["allowed_globals"] = tuple(given["allowed_globals"])
        parsed = cls(**given)
        if parsed.part_size < 5 * 1024 * 1024 or parsed.concurrency < 1:
            raise ConfigurationError(
                "part_size must be at least 5 MiB (S3's smallest part) and concurrency >= 1"
            )
        if parsed.lease_seconds <= 0 or parsed.retry_after < 0:
            raise ConfigurationError("lease_seconds must be > 0 and retry_after >= 0")
        return parsed
