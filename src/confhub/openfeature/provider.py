"""An OpenFeature provider that evaluates confhub's flags in process.

    from openfeature import api
    from confhub.openfeature import ConfhubProvider

    api.set_provider(ConfhubProvider(confhub.open("http://localhost:8011"), tenant="acme",
                                     client_id="checkout-7"))
    client = api.get_client()
    client.get_boolean_value("new-checkout", False, EvaluationContext("user-42"))

The provider keeps the tenant's flags namespace in memory (``source.LiveFlags``: a list,
then the watch stream), so an evaluation is a dictionary lookup and a JsonLogic run, never a
request.

With a consumer identity (``client_id=`` / ``labels=``, or a tenant opened with one:
``hub.tenant("acme", client_id=...)``) the provider reads the flags as that consumer, so a
flag under a staged rollout (DESIGN.md section 8) evaluates to its staged definition when the
consumer is in the cohort, and to the committed one otherwise. The client id is then the
targeting key of every evaluation whose context names none. Events:

    PROVIDER_READY                  flags loaded (again, after the server came back)
    PROVIDER_CONFIGURATION_CHANGED  a committed revision changed flags; ``flags_changed`` names
                                    them, ``metadata["revision"]`` is the revision
    PROVIDER_STALE                  the server cannot be reached; the last flags keep serving
    PROVIDER_ERROR                  initialisation could not load the flags in time (the
                                    provider keeps trying and sends READY when it can)

Each resolution carries ``variant``, ``reason`` (STATIC, TARGETING_MATCH, SPLIT, DEFAULT,
DISABLED, ERROR) and ``flag_metadata`` (the flag's and flag set's metadata, and ``version``,
the flag's confhub version).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, GeneralError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from ..flags import FLAGS_NAMESPACE, Evaluation, FlagSet
from ..model import BASE_ENV, DEFAULT_TENANT
from .source import FlagTenant, LiveFlags

__all__ = ["ConfhubProvider"]

T = TypeVar("T")
_REASONS = {reason.value: reason for reason in Reason}
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class ConfhubProvider(AbstractProvider):
    """OpenFeature provider for the flags of one tenant of a confhub hub.

    ``hub`` is what ``confhub.open()`` returns (embedded or remote); ``namespace`` holds the
    flags (default ``flags``), ``env`` selects the layer (flags resolve like any key: base
    merged with the env's overlay); ``init_timeout`` bounds how long ``initialize`` waits for
    the first load.

    ``tenant`` is a name, or a tenant object (``hub.tenant("acme", client_id=...)``) whose
    identity the provider then reads as; ``client_id`` and ``labels`` give the identity with a
    tenant name (they cannot be combined with a tenant object).
    """

    def __init__(self, hub: Any, tenant: str | FlagTenant = DEFAULT_TENANT, *,
                 namespace: str = FLAGS_NAMESPACE, env: str = BASE_ENV,
                 init_timeout: float = 10.0, client_id: str | None = None,
                 labels: Mapping[str, str] | str | None = None) -> None:
        super().__init__()
        source: FlagTenant
        if isinstance(tenant, str):
            source = (hub.tenant(tenant) if client_id is None and labels is None
                      else hub.tenant(tenant, client_id=client_id, labels=labels))
        elif client_id is not None or labels is not None:
            raise ValueError("give client_id/labels with a tenant name, or a tenant opened "
                             "with them, not both")
        else:
            source = tenant
        identity = getattr(source, "identity", None)
        self.client_id: str | None = identity.client_id if identity is not None else None
        self.live = LiveFlags(source, namespace, env)
        self.init_timeout = init_timeout
        self._initialised = False
        self._gave_up = False  # initialize timed out; READY is sent once loaded
        self._stale = False
        self.live.on_change(self._changed)
        self.live.on_connection(self._connection)

    def get_metadata(self) -> Metadata:
        return Metadata(name="confhub")

    # ------------------------------------------------------------------ lifecycle

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        if not self.live.start(self.init_timeout):
            self._gave_up = True
            why = self.live.error or "no answer"
            raise GeneralError(f"confhub flags of tenant {self.live.tenant.name!r} could not be "
                               f"loaded within {self.init_timeout:g}s: {why}")
        self._initialised = True

    def shutdown(self) -> None:
        self.live.stop()

    def _changed(self, flags: list[str], revision: int) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(
            flags_changed=flags, metadata={"revision": revision}))

    def _connection(self, connected: bool) -> None:
        if not connected:
            if self._initialised and not self._stale:
                self._stale = True
                self.emit_provider_stale(ProviderEventDetails(
                    message="confhub cannot be reached; serving the last flags it sent"))
        elif self._stale or self._gave_up:  # back after an outage, or loaded at last
            self._stale = self._gave_up = False
            self._initialised = True
            self.emit_provider_ready(ProviderEventDetails(
                message="confhub flags are current again"))

    # ------------------------------------------------------------------ evaluation

    @property
    def flags(self) -> FlagSet:
        """The flags evaluations read now."""
        return self.live.flags

    def evaluate(self, flag_key: str, kind: str | None = None,
                 evaluation_context: EvaluationContext | None = None) -> Evaluation:
        """The confhub evaluation of a flag (what the resolvers translate)."""
        ctx = evaluation_context
        return self.live.flags.evaluate(flag_key, ctx.attributes if ctx else None,
                                        self._targeting_key(ctx), kind)

    def _targeting_key(self, ctx: EvaluationContext | None) -> str | None:
        """The context's targeting key, else the consumer's client id (None if anonymous)."""
        key = ctx.targeting_key if ctx is not None else None
        return key if key else self.client_id

    def _resolve(self, kind: str, flag_key: str, default_value: T,
                 evaluation_context: EvaluationContext | None) -> FlagResolutionDetails[T]:
        ctx = evaluation_context
        result = self.live.flags.evaluate(flag_key, ctx.attributes if ctx else None,
                                          self._targeting_key(ctx), kind)
        if result.error_code is not None:
            return FlagResolutionDetails(default_value, ErrorCode(result.error_code),
                                         result.error_message, Reason.ERROR,
                                         flag_metadata=dict(result.metadata))
        value = default_value if result.variant is None else result.value
        return FlagResolutionDetails(value, reason=_REASONS[result.reason],
                                     variant=result.variant,
                                     flag_metadata=dict(result.metadata))

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[bool]:
        return self._resolve("boolean", flag_key, default_value, evaluation_context)

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        return self._resolve("string", flag_key, default_value, evaluation_context)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[int]:
        return self._resolve("integer", flag_key, default_value, evaluation_context)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None
                              ) -> FlagResolutionDetails[float]:
        return self._resolve("float", flag_key, default_value, evaluation_context)

    def resolve_object_details(self, flag_key: str, default_value: ObjectValue,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[ObjectValue]:
        return self._resolve("object", flag_key, default_value, evaluation_context)

    # In-process evaluation never waits on I/O: the async resolvers answer directly.

    async def resolve_boolean_details_async(
            self, flag_key: str, default_value: bool,
            evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[bool]:
        return self.resolve_boolean_details(flag_key, default_value, evaluation_context)

    async def resolve_string_details_async(
            self, flag_key: str, default_value: str,
            evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[str]:
        return self.resolve_string_details(flag_key, default_value, evaluation_context)

    async def resolve_integer_details_async(
            self, flag_key: str, default_value: int,
            evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[int]:
        return self.resolve_integer_details(flag_key, default_value, evaluation_context)

    async def resolve_float_details_async(
            self, flag_key: str, default_value: float,
            evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self.resolve_float_details(flag_key, default_value, evaluation_context)

    async def resolve_object_details_async(
            self, flag_key: str, default_value: ObjectValue,
            evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[ObjectValue]:
        return self.resolve_object_details(flag_key, default_value, evaluation_context)
