"""The schema of issue 5's existing deployment, written as a user would."""

from __future__ import annotations

from typing import Any

import pytest

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,  # unknown parameter names refused
    "properties": {
        "max_membrane_depth": {"type": "integer", "minimum": 1, "maximum": 64},
        "esn_reservoir_size": {"type": "integer", "minimum": 64, "maximum": 16384},
        "bseries_max_order": {"type": "integer", "minimum": 1, "maximum": 32},
        "cache_ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 86400,
                              "x-restart-required": True},
        "enable_caching": {"type": "boolean"},
        "api_key": {"type": "string", "x-secret": True},
    },
}
PARAMS_RULES: list[dict[str, Any]] = [
    {"name": "reservoir-covers-depth",
     "expr": "!has(self.esn_reservoir_size) || !has(self.max_membrane_depth) || "
             "self.esn_reservoir_size >= self.max_membrane_depth * 32",
     "path": "/esn_reservoir_size",
     "message": "esn_reservoir_size must be at least max_membrane_depth * 32",
     "severity": "error"},
    {"name": "caching-needs-ttl",
     "expr": "!has(self.enable_caching) || !self.enable_caching || has(self.cache_ttl_seconds)",
     "path": "/cache_ttl_seconds",
     "message": "enable_caching true requires cache_ttl_seconds", "severity": "error"},
    {"name": "high-order-is-slow", "expr": "!has(self.bseries_max_order) || "
     "self.bseries_max_order <= 16", "path": "/bseries_max_order",
     "message": "orders above 16 are slow", "severity": "warning"},
]
GOOD: dict[str, Any] = {"max_membrane_depth": 4, "esn_reservoir_size": 256,
                        "bseries_max_order": 8, "enable_caching": True,
                        "cache_ttl_seconds": 60}


@pytest.fixture
def params_schema() -> dict[str, Any]:
    return {"schema": PARAMS_SCHEMA, "rules": PARAMS_RULES}
