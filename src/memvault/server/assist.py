"""REST routes that involve a model or the scheduler: ``POST /v1/remember``,
``POST /v1/chat`` and ``GET /v1/scheduler``.

Like every route, each is one call on the caller's
:class:`~memvault.governance.ScopedVault`. What is particular here:

* the server's LLM (``memvault serve --llm SPEC``, ``settings.llm``, or ``create_app(llm=)``)
  is the only one a request can use: a caller cannot name a model or an endpoint (that
  would let any key make the server call arbitrary URLs). Without one, chat and fine
  remember answer 409 ``model_unavailable``; fast remember needs no model.
* model calls run on the runtime's ``model_pool``, never on the event loop and not on the
  vault workers, so a slow generation delays other generations only.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from . import models as m
from .runtime import _ERRORS, RT, SV, _ok
from .scheduler_view import scheduler_state
from .wire import remember_doc

__all__ = ["assist_router"]


def assist_router() -> APIRouter:
    r = APIRouter(prefix="/v1", responses=_ERRORS, tags=["models"])

    @r.post("/remember", status_code=201, response_model=m.RememberOut,
            summary="Store chat turns and read memories from them (fast: later; fine: now, "
                    "with the server's LLM)")
    async def remember(body: m.RememberIn, sv: SV, rt: RT) -> Response:
        fields = body.model_dump(exclude_none=True)
        messages = [msg.model_dump(exclude_none=True) for msg in body.messages]
        fields.pop("messages")
        if body.mode != "fine":  # fast (or a bad mode, which the Vault refuses)
            result = await rt.run(sv.remember, messages, **fields)
        else:
            rt.llm.require("fine remember")
            result = await rt.model_pool.run(
                lambda: sv.remember(messages, llm=rt.llm.get(), **fields))
        return _ok(remember_doc(result), 201)

    @r.post("/chat", response_model=m.ChatOut,
            summary="Answer with the caller's memories (needs the server's LLM)")
    async def chat(body: m.ChatIn, sv: SV, rt: RT) -> Response:
        rt.llm.require("chat")
        fields = body.model_dump(exclude_none=True)
        query = fields.pop("query")
        fields["adapter"] = None if fields.pop("adapter") else False  # None: the scope's
        result = await rt.model_pool.run(lambda: sv.chat(query, llm=rt.llm.get(), **fields))
        return _ok(result.to_dict())

    @r.get("/scheduler", response_model=m.SchedulerOut,
           summary="The caller's activation blocks and LoRA adapters (read-only)")
    async def scheduler(sv: SV, rt: RT) -> Response:
        return _ok(await rt.run(scheduler_state, sv))

    return r
