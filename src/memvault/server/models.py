"""Request and response bodies of the REST API, as pydantic models (they make the OpenAPI
schema). Requests are strict (no coercion of ``"0.5"`` into a number) and refuse unknown
fields; value checks (sizes, id syntax, kinds, times) are left to the Vault so that every
face refuses the same input with the same message."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from typing import Literal

# A time: an ISO-8601 date or date-time (optional UTC offset) of 1901..2198, or epoch
# seconds 1900..2200. The years are those the vault accepts with any offset; the pattern
# admits real calendar dates only (Feb 29 in leap years), so that every time the schema
# allows is one the server accepts.
_YEAR = r"(19(0[1-9]|[1-9][0-9])|20[0-9][0-9]|21([0-8][0-9]|9[0-8]))"
_LEAP = r"((19|21)(0[48]|[2468][048]|[13579][26])|20(0[048]|[2468][048]|[13579][26]))"
_DAY = (rf"({_YEAR}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
        rf"|02-(0[1-9]|1[0-9]|2[0-8]))|{_LEAP}-02-29)")
_HM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
TIME_PATTERN = rf"^{_DAY}([T ]{_HM}(:[0-5][0-9](\.[0-9]{{1,6}})?)?(Z|[+-]{_HM})?)?$"
EPOCH_MIN, EPOCH_MAX = -2208988800.0, 7258118400.0  # 1900-01-01, 2200-01-01 (UTC)
TimeText = Annotated[str, Field(pattern=TIME_PATTERN)]


def _integral(value: Any) -> Any:
    """JSON has one number type: 5.0 is the integer 5 (the schema's "integer")."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: An integer, also when written 5.0 (strict otherwise: "5" and true are refused).
Int = Annotated[int, BeforeValidator(_integral)]
Time = TimeText | Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX)]

# What the vault accepts, said in the schema (so that a request the schema allows is one
# the server accepts, and the reverse). The vault checks the same again for every face.
#: A memory id (``_validate.item_id``).
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, description="A memory id.")]
#: user_id, agent_id, session_id, cube_id (``_validate.scope``).
ScopeValue = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
#: Text and queries: not blank, no NUL (``_validate.text``; the size limit is in bytes).
NonBlank = Annotated[str, Field(pattern=r"^[^\x00]*\S[^\x00]*$")]
Kind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Tag = Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*\S[^\x00]*$")]
#: A principal, or team:<name> (``governance.principals.principal_name``).
GRANTEE_PATTERN = r"^[A-Za-z0-9_.@:+-]{1,128}$"
GRANT_ID_PATTERN = r"^g_[0-9a-f]{16}$"

_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = 2 ** 63


def json_problem(value: Any, where: str = "", *, int64: bool = False) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored and sent back as standard JSON, or
    ``None``: a string or key with an unpaired surrogate (no UTF-8 for it), a NaN or
    infinite number (not JSON), or with ``int64`` an integer outside 64 bits (what a
    filter can compare with). Iterative: deep nesting cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        at, v = stack.pop()
        path = at or "the body"
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return f"{path} contains an unpaired surrogate"
        elif isinstance(v, float):
            if not math.isfinite(v):
                return f"{path} is not a finite number"
        elif isinstance(v, int) and not isinstance(v, bool):
            if int64 and not -_INT64 <= v < _INT64:
                return f"{path} is outside the 64-bit integer range"
        elif isinstance(v, dict):
            for key, item in v.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"a key in {path} contains an unpaired surrogate"
                stack.append((f"{at}.{key}" if at else str(key), item))
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{at}[{i}]", item) for i, item in enumerate(v))
    return None


class _JSONSafe(BaseModel):
    """Refuses what could be stored but not answered as JSON (see :func:`json_problem`),
    before anything is written."""

    @model_validator(mode="before")
    @classmethod
    def _json_safe(cls, data: Any) -> Any:
        problem = json_problem(data, int64=cls is Filters)
        if problem:
            raise ValueError(problem)
        return data


class _In(_JSONSafe):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Scope(_In):
    user_id: ScopeValue | None = None
    agent_id: ScopeValue | None = None
    session_id: ScopeValue | None = None
    cube_id: ScopeValue | None = None


class RecordDefaults(Scope):
    """Values for records that do not set them (``add_many``'s ``**defaults``)."""

    kind: Kind | None = None
    metadata: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=64)
    event_time: Time | None = None
    importance: float | None = Field(default=None, ge=0.0, le=1.0)
    expires_at: Time | None = None


class AddIn(RecordDefaults):
    text: NonBlank
    id: Id | None = Field(default=None, description="Caller-chosen id, in the key's own "
                           "namespace: the id_prefix of /v1/whoami (for an agent's memory "
                           "<user>:<agent>:) then letters, digits, _ . - (default: a new "
                           "UUIDv7).")


class AddOneIn(AddIn):
    dedup: Literal["off", "noop", "version"] | None = Field(
        default=None, description="When the text restates an active memory of the same "
        "kind and owner: off (store it anyway, the default), noop (answer that memory, "
        "write nothing) or version (write the text as its next version). The answer is "
        "201 either way; its id says which memory was kept. Not with id.")


#: Records (or messages) one request may carry: bounds the work a request makes (a
#: 1 MB body holds ~20,000 short records, minutes of embedding); send more in several.
MAX_RECORDS = 1000


class AddManyIn(_In):
    records: list[NonBlank | AddIn] = Field(
        max_length=MAX_RECORDS, description=f"At most {MAX_RECORDS} per request. Each "
        "batch_size of them is one transaction; if the client disconnects, the batches not "
        "yet started are not written.")
    batch_size: Int = Field(default=256, ge=1, le=MAX_RECORDS,
                            description="Records per transaction.")
    defaults: RecordDefaults | None = None


class MessageIn(_JSONSafe):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)
    role: str = "user"
    content: NonBlank
    name: str | None = None
    timestamp: Time | None = None
    metadata: dict[str, Any] | None = None


class MessagesIn(Scope):
    messages: list[MessageIn] = Field(max_length=MAX_RECORDS,
                                      description=f"At most {MAX_RECORDS} per request.")
    metadata: dict[str, Any] | None = None
    event_time: Time | None = None


class RememberIn(Scope):
    messages: list[MessageIn] = Field(max_length=MAX_RECORDS,
                                      description=f"At most {MAX_RECORDS} per request.")
    mode: Literal["fast", "fine"] = Field(default="fast", description="fast: store the turns now, extract "
                      "later; fine: extract facts now with the server's LLM.")
    event_time: Time | None = None


class ChatIn(Scope):
    query: NonBlank
    k: Int = Field(default=5, ge=0, le=1000,
                   description="How many retrieved memories go into the prompt.")
    activation: bool = Field(default=True, description="Use the scope's KV-cache block "
                             "(local models only).")
    adapter: bool = Field(default=True, description="Use the scope's LoRA adapter, if it "
                          "has one (local models only).")
    remember: bool = Field(default=False, description="Store the query and the answer as "
                           "turns.")
    max_tokens: Int = Field(default=256, ge=1, le=4096)


class UpdateIn(_In):
    text: NonBlank | None = None
    kind: Kind | None = None
    metadata: dict[str, Any] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=64)
    event_time: Time | None = None
    importance: float | None = Field(default=None, ge=0.0, le=1.0)
    expires_at: Time | None = None
    reason: str | None = None


class ReasonIn(_In):
    reason: str | None = None


MetaKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$")]
Int64 = Annotated[Int, Field(ge=-(2 ** 63), le=2 ** 63 - 1)]


class Filters(_In):
    kind: Kind | list[Kind] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=64)
    metadata: dict[MetaKey, str | Int64 | float | bool | None] | None = None
    ids: list[Id] | None = None
    event_after: Time | None = None
    event_before: Time | None = None
    created_after: Time | None = None
    created_before: Time | None = None


Status = Literal["active", "archived", "deleted", "quarantined"]
Searchable = Literal["active", "archived", "deleted"]


class SearchIn(Scope):
    query: NonBlank
    filters: Filters | None = None
    k: Int = Field(default=10, ge=1, le=1000)
    as_of: Time | None = Field(default=None, description="Search what held in the world at "
                                                         "this time (valid time).")
    known_at: Time | None = Field(default=None, description="Search the vault as it was "
                                                            "recorded at this time.")
    status: Searchable | Literal["any"] | list[Searchable] | None = Field(
        default="active", description="A status, a list of them, or null / \"any\" for "
                                      "all but quarantined (search never serves held text; "
                                      "review it at /v1/quarantine).")


class LinkIn(_In):
    src: Id
    dst: Id
    kind: Kind = "related"
    weight: float = Field(default=1.0, ge=0.0, le=1e6)


class ItemShareIn(_In):
    """A grant of the memory in the path: to whom, how."""

    to: str = Field(pattern=GRANTEE_PATTERN, description="A principal name, or "
                    "team:<name>.")
    write: bool = Field(default=False, description="Also allow update/delete/archive/restore.")
    redact: list[Literal["metadata", "provenance", "tags", "session_id", "agent_id",
                         "event_time", "links"]] = Field(
        default_factory=list, description="Fields hidden from the "
                              "grantee: metadata, provenance, tags, session_id, agent_id, "
                              "event_time, links.")
    valid_from: Time | None = None
    valid_to: Time | None = None


class ShareItemIn(ItemShareIn):
    """A grant of one of the caller's memories."""

    item_id: Id


class ShareCubeIn(ItemShareIn):
    """A grant of one of the caller's cubes."""

    cube_id: ScopeValue


class ShareAllIn(ItemShareIn):
    """A grant of all of the caller's memory."""

    everything: Literal[True] = Field(description="All of the caller's memory.")


#: A grant names exactly one of item_id, cube_id, everything (the schema's anyOf of three
#: bodies that refuse each other's fields).
ShareIn = ShareItemIn | ShareCubeIn | ShareAllIn


# -- responses ---------------------------------------------------------------------------
class LinkOut(BaseModel):
    target: str
    kind: str
    weight: float


class MemoryItemOut(BaseModel):
    """``MemoryItem.to_dict()``: times are ISO-8601 strings in UTC."""

    id: str
    text: str
    kind: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    cube_id: str | None
    metadata: dict[str, Any]
    provenance: dict[str, Any]
    tags: list[str]
    created_at: str | None
    event_time: str | None
    valid_from: str | None
    valid_to: str | None
    valid_at: str | None = None
    invalid_at: str | None = None
    version: int
    status: str
    importance: float
    expires_at: str | None
    access_count: int
    last_accessed_at: str | None
    links: list[LinkOut]


class ItemsOut(BaseModel):
    items: list[MemoryItemOut]


class PageOut(BaseModel):
    items: list[MemoryItemOut]
    total: int
    offset: int
    next_offset: int | None


class SearchHitOut(BaseModel):
    rank: int
    score: float
    sources: dict[str, float]
    item: MemoryItemOut


class HitsOut(BaseModel):
    hits: list[SearchHitOut]


class HistoryOut(BaseModel):
    id: str
    versions: list[MemoryItemOut]


class PurgeOut(BaseModel):
    id: str
    purged_versions: int


class DecisionOut(BaseModel):
    """One reader decision; ``target`` and ``item`` are whole memories (or null)."""

    action: str
    fact: str
    kind: str
    target: MemoryItemOut | None
    text: str | None
    reason: str
    decided_by: str
    similarity: float | None
    item: MemoryItemOut | None
    error: str | None


class RememberOut(BaseModel):
    mode: str
    turns: list[MemoryItemOut]
    decisions: list[DecisionOut]
    counts: dict[str, int]
    methods: list[str]


class ChatOut(BaseModel):
    """``ChatResult.to_dict()``."""

    answer: str
    model: str
    memories: list[SearchHitOut]
    block: str | None
    block_items: list[str]
    cached_tokens: int
    prompt_tokens: int | None
    adapter: str | None
    adapter_route: str = "off: no adapter"
    route: str = "retrieval"
    activation: str
    remembered: list[str]


class BlockOut(BaseModel):
    hash: str
    model: str
    n_tokens: int
    item_ids: list[str]
    stale: bool
    stale_ids: list[str]
    adapter: str | None
    created_at: str | None


class AdapterOut(BaseModel):
    name: str
    key: str
    model: str
    sources: int
    created_at: str | None
    size_bytes: int


class ActivationStateOut(BaseModel):
    available: bool = Field(description="False when the vault has no block directory "
                            "(a throw-away or PostgreSQL vault).")
    blocks: list[BlockOut]


class AdapterStateOut(BaseModel):
    available: bool
    adapters: list[AdapterOut]


class SchedulerOut(BaseModel):
    activation: ActivationStateOut
    adapters: AdapterStateOut


class CountOut(BaseModel):
    count: int


class AuditEventOut(BaseModel):
    seq: int
    at: str
    actor: str | None
    action: str
    item_id: str | None
    version: int | None
    details: dict[str, Any]


class AuditOut(BaseModel):
    events: list[AuditEventOut]


class PrincipalOut(BaseModel):
    name: str
    user_id: str
    agent_id: str | None
    key_id: str | None
    id_prefix: str = Field(description="Ids this key chooses for its memories start with "
                                       "this (then letters, digits, _ . -).")


class ModelPoolOut(BaseModel):
    """The model worker pool: is an LLM configured, how many calls run and wait."""

    configured: bool
    threads: int
    in_flight: int
    queue_depth: int


class HealthOut(BaseModel):
    status: str
    version: str
    uptime_s: float
    in_flight: int
    queue_depth: int
    model: ModelPoolOut


class ErrorOut(BaseModel):
    """Every failure: a stable ``code`` (see memvault.errors), a message, maybe details."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class GrantOut(BaseModel):
    grant_id: str
    grantee: str
    resource: str
    owner_user_id: str
    owner_agent_id: str | None
    cube_id: str | None
    item_id: str | None
    permission: str
    redact: list[str]
    granted_by: str | None
    created_at: str
    valid_from: str
    valid_to: str | None
    revoked_by: str | None


class GrantsOut(BaseModel):
    grants: list[GrantOut]
