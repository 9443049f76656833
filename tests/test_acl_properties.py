"""Property: over random principals, teams, items, grants, revocations and membership
changes interleaved with reads and writes, no read returns a memory the principal may not
see at that moment, every memory it may see is returned, redaction is as granted, writes
need a write grant, and every grant and team change has its audit event.

"May see" comes from an oracle written here independently of memvault.governance.acl:
plain lists of grants and memberships, and the rules of docs/governance.md.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memvault import NotFound, PermissionDenied, Vault
from memvault.governance import GrantStore, KeyStore, Principal, ScopedVault
from memvault.types import utcnow

# name -> (user, agent): p4 is an agent-bound key of u0
PRINCIPALS = {"p0": ("u0", None), "p1": ("u1", None), "p2": ("u2", None),
              "p3": ("u3", None), "p4": ("u0", "a1")}
TEAMS = ["team:t0", "team:t1"]
FIELDS = ["metadata", "tags", "provenance"]

item_spec = st.tuples(st.sampled_from(["u0", "u1", "u2", "u3"]), st.sampled_from([None, "a1"]),
                      st.sampled_from([None, "c0", "c1"]))
share_op = st.tuples(st.just("share"), st.sampled_from(sorted(PRINCIPALS)),
                     st.sampled_from(["item", "cube", "everything"]), st.integers(0, 50),
                     st.sampled_from(["c0", "c1"]),
                     st.sampled_from(sorted(PRINCIPALS) + TEAMS), st.booleans(),
                     st.lists(st.sampled_from(FIELDS), max_size=3, unique=True),
                     st.sampled_from(["now", "now", "now", "past", "future"]))
ops = st.lists(st.one_of(
    share_op,
    st.tuples(st.just("unshare"), st.integers(0, 50)),
    st.tuples(st.sampled_from(["join", "leave"]), st.sampled_from(TEAMS),
              st.sampled_from(sorted(PRINCIPALS))),
    st.tuples(st.just("read"), st.sampled_from(sorted(PRINCIPALS)),
              st.sampled_from(["get", "list", "search", "history", "export"]),
              st.integers(0, 50)),
    st.tuples(st.just("write"), st.sampled_from(sorted(PRINCIPALS)), st.integers(0, 50)),
), min_size=3, max_size=15)


@dataclass
class Oracle:
    """Who may see what, kept as plain data."""

    grants: list[dict[str, Any]] = field(default_factory=list)
    members: set[tuple[str, str]] = field(default_factory=set)

    def _owns(self, name: str, item: Any) -> bool:
        user, agent = PRINCIPALS[name]
        return item.user_id == user and (agent is None or item.agent_id == agent)

    def _grants_to(self, name: str, item: Any) -> list[dict[str, Any]]:
        teams = {t for t, m in self.members if m == name}
        return [g for g in self.grants
                if g["live"] and (g["grantee"] == name or g["grantee"] in teams)
                and item.user_id == g["user"]
                and (g["agent"] is None or item.agent_id == g["agent"])
                and (g["cube"] is None or item.cube_id == g["cube"])
                and (g["item"] is None or item.id == g["item"])]

    def visible(self, name: str, item: Any) -> bool:
        return self._owns(name, item) or bool(self._grants_to(name, item))

    def writable(self, name: str, item: Any) -> bool:
        return self._owns(name, item) or any(g["write"] for g in self._grants_to(name, item))

    def hidden(self, name: str, item: Any) -> set[str]:
        if self._owns(name, item):
            return set()
        sets = [set(g["redact"]) for g in self._grants_to(name, item)]
        return set.intersection(*sets) if sets else set()


def check_view(oracle: Oracle, name: str, seen: Any, stored: Any) -> None:
    hidden = oracle.hidden(name, stored)
    for f in FIELDS:
        want = {"metadata": {}, "tags": (), "provenance": {}}[f] if f in hidden \
            else getattr(stored, f)
        assert getattr(seen, f) == want, (name, f, hidden)
    assert (seen.id, seen.text, seen.user_id) == (stored.id, stored.text, stored.user_id)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(item_spec, min_size=1, max_size=8), steps=ops)
# the boundaries, always tried: an agent-bound owner, cubes, teams, time, write grants
@example(items=[("u0", None, "c0"), ("u0", "a1", "c0"), ("u0", "a1", "c1")],
         steps=[("share", "p4", "everything", 0, "c0", "p1", False, [], "now"),
                ("share", "p4", "cube", 0, "c1", "team:t0", True, ["tags"], "now"),
                ("join", "team:t0", "p2"), ("write", "p2", 2), ("write", "p2", 1),
                ("leave", "team:t0", "p2"), ("write", "p2", 2)])
@example(items=[("u1", None, "c0"), ("u1", None, "c1"), ("u2", None, "c0")],
         steps=[("share", "p1", "cube", 0, "c0", "p3", False, ["metadata"], "now"),
                ("share", "p1", "item", 0, "c0", "p3", False, ["metadata", "tags"], "now"),
                ("read", "p3", "search", 0), ("unshare", 0), ("read", "p3", "export", 0),
                ("share", "p2", "everything", 0, "c0", "p3", False, [], "past"),
                ("share", "p2", "everything", 0, "c0", "p3", False, [], "future"),
                ("unshare", 3), ("read", "p3", "history", 2)])
def test_no_read_ever_leaks_and_every_grant_change_is_audited(items, steps) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vault.db"
        vault = Vault(path, embedder="hash")
        keys = KeyStore.for_vault(path)
        store = GrantStore(keys)
        try:
            _run(vault, store, items, steps)
        finally:
            keys.close()
            vault.close()


def _run(vault: Vault, store: GrantStore, items: list[Any], steps: list[Any]) -> None:
    faces = {n: ScopedVault(vault, Principal(n, u, a), grants=store)
             for n, (u, a) in PRINCIPALS.items()}
    made = [vault.add(f"memory {i} of {u} about tea", user_id=u, agent_id=a, cube_id=c,
                      metadata={"n": i}, tags=[f"t{i}"], provenance={"src": "test"})
            for i, (u, a, c) in enumerate(items)]
    oracle = Oracle()
    shares = unshares = team_changes = 0
    for step in steps:
        kind = step[0]
        now = utcnow()
        if kind == "share":
            _, giver, resource, idx, cube, grantee, write, redact, timing = step
            face = faces[giver]
            own = [m for m in made if oracle._owns(giver, m)]
            if resource == "item" and not own:
                continue
            target = own[idx % len(own)] if resource == "item" else None
            start, end = {"now": (None, None),
                          "past": (now - timedelta(hours=2), now - timedelta(hours=1)),
                          "future": (now + timedelta(hours=1), None)}[timing]
            grant = face.share(target.id if target else None, to=grantee,
                               cube_id=cube if resource == "cube" else None,
                               everything=resource == "everything", write=write,
                               redact=redact, valid_from=start, valid_to=end)
            shares += 1
            user, agent = PRINCIPALS[giver]
            oracle.grants.append({"id": grant.grant_id, "giver": giver, "grantee": grantee,
                                  "user": user, "agent": agent,
                                  "cube": cube if resource == "cube" else None,
                                  "item": target.id if target else None, "write": write,
                                  "redact": redact, "live": timing == "now",
                                  "open": timing != "past"})
        elif kind == "unshare":
            if not oracle.grants:
                continue
            g = oracle.grants[step[1] % len(oracle.grants)]
            faces[g["giver"]].unshare(g["id"])
            unshares += g["open"]
            g["live"] = g["open"] = False
        elif kind in ("join", "leave"):
            _, team, member = step
            change = store.join if kind == "join" else store.leave
            changed = change(vault, team, member, actor="op")
            assert changed == (((team, member) in oracle.members) != (kind == "join"))
            team_changes += changed
            (oracle.members.add if kind == "join" else oracle.members.discard)((team, member))
        elif kind == "read":
            _read(oracle, faces[step[1]], step[1], step[2], made[step[3] % len(made)], vault)
        elif kind == "write":
            _, name, idx = step
            target = made[idx % len(made)]
            try:
                faces[name].update(target.id, importance=round((idx % 10) / 10 + 0.05, 2))
                assert oracle.writable(name, target), "a write without a write grant"
            except PermissionDenied:
                assert oracle.visible(name, target) and not oracle.writable(name, target)
            except NotFound:
                assert not oracle.visible(name, target)
        _sweep(oracle, faces, vault)  # after every step: every principal, every memory
    # every grant change is in the audit log, once
    events = vault.audit(limit=1000)
    by_action: dict[str, list[Any]] = {}
    for e in events:
        by_action.setdefault(e.action, []).append(e)
    assert len(by_action.get("share", [])) == shares
    assert len(by_action.get("unshare", [])) == unshares
    assert len(by_action.get("team_join", [])) + len(by_action.get("team_leave", [])) == \
        team_changes
    stored = store.list(include_revoked=True)
    assert {g.grant_id for g in stored} == {e.details["grant_id"] for e in
                                             by_action.get("share", [])}
    assert {g.grant_id for g in stored if g.revoked_by} == \
        {e.details["grant_id"] for e in by_action.get("unshare", [])}


def _sweep(oracle: Oracle, faces: dict[str, ScopedVault], vault: Vault) -> None:
    """Each principal lists everything it can see and gets every memory."""
    current = {m.id: m for m in vault.export()}
    for name, face in faces.items():
        _read(oracle, face, name, "list", None, vault, current)
        for m in current.values():
            _read(oracle, face, name, "get", m, vault, current)


def _read(oracle: Oracle, face: ScopedVault, name: str, op: str, target: Any,
          vault: Vault, current: dict[str, Any] | None = None) -> None:
    current = current or {m.id: m for m in vault.export()}
    allowed = {i for i, m in current.items() if oracle.visible(name, m)}
    if op in ("get", "history"):
        try:
            seen = face.get(target.id) if op == "get" else face.history(target.id)[-1]
        except NotFound:
            assert target.id not in allowed, "a visible memory was hidden"
            return
        assert target.id in allowed, f"leak: {name} read {target.id}"
        check_view(oracle, name, seen, current[target.id])
        return
    if op == "search":
        got = [h.item for h in face.search("memory about tea", k=50)]
    elif op == "list":
        got = face.list(status="any", limit=1000).items
    else:
        got = list(face.export())
    returned = {i.id for i in got}
    assert returned <= allowed, f"leak: {name} got {returned - allowed}"
    if op != "search":
        assert returned == allowed, "a visible memory was hidden"
    for seen in got:
        check_view(oracle, name, seen, current[seen.id])
