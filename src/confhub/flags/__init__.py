"""Feature flags: flagd's flag-definition format, kept as the keys of a flags namespace.

``definition`` checks a flag at write (the namespace's built-in schema), ``evaluation``
evaluates flags with flagd's rules, ``flagset`` converts flagd flag-set files to and from
keys. The OpenFeature provider and the live in-memory copy of a tenant's flags are
``confhub.openfeature``; OFREP is ``server/routes/ofrep.py``.
"""

from .definition import (
    EVALUATORS_KEY,
    FLAGS_NAMESPACE,
    RESERVED_PREFIX,
    SET_METADATA_KEY,
    check_entry,
    check_flag,
)
from .evaluation import KINDS, Evaluation, FlagSet
from .flagset import FLAGD_SCHEMA, FlagSetPlan, plan_import, to_flagd

__all__ = [
    "EVALUATORS_KEY",
    "FLAGD_SCHEMA",
    "FLAGS_NAMESPACE",
    "KINDS",
    "RESERVED_PREFIX",
    "SET_METADATA_KEY",
    "Evaluation",
    "FlagSet",
    "FlagSetPlan",
    "check_entry",
    "check_flag",
    "plan_import",
    "to_flagd",
]
