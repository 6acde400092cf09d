"""Config as code: a directory of files is the desired state, the store the live one.

``load_directory`` reads the layout, ``make_plan`` diffs it with a tenant, ``apply_plan``
commits the plan as one transaction, ``find_drift`` tells what moved since, and
``export_to_directory`` writes the store back as files. Everything here talks to a hub through
its public API only, so it works the same on an embedded hub and on a server (``--url``).
"""

from ..errors import LayoutError, PlanRefused
from .apply import ApplyResult, apply_plan, check_plan, start_plan_rollout
from .diffs import FieldChange, KeyChange
from .drift import DriftReport, find_drift
from .export import ExportResult, export_to_directory
from .layout import DesiredKey, Layout, SourceConfig, load_directory
from .plan import Plan, make_plan
from .risk import KEY_RULES, PLAN_RULES, Level, parse_level

__all__ = [
    "KEY_RULES",
    "PLAN_RULES",
    "ApplyResult",
    "DesiredKey",
    "DriftReport",
    "ExportResult",
    "FieldChange",
    "KeyChange",
    "Layout",
    "LayoutError",
    "Level",
    "Plan",
    "PlanRefused",
    "SourceConfig",
    "apply_plan",
    "start_plan_rollout",
    "check_plan",
    "export_to_directory",
    "find_drift",
    "load_directory",
    "make_plan",
    "parse_level",
]
