"""Consolidation worth keeping (issue 29), on a real SQLite vault (hash embedder): topics
named by content, session summaries that keep the facts, entity links that skip the
speakers, a cancellable pass that reports its cost."""

from __future__ import annotations

import threading

from memvault import Vault
from memvault.scheduler import ConsolidateConfig, LinkConfig, Scheduler, consolidate, link_new
from memvault.scheduler.summarize import content_words
from memvault.scheduler.topics import is_filler_title, key_phrases

U = "pair"
CHAT = [  # two sessions of chatter around a few facts
    [("Caroline", "Hey Mel! Good to see you! How have you been?"),
     ("Melanie", "Hey Caroline! Wow, so glad to hear from you. Since we talked I've been busy."),
     ("Caroline", "I went to a pottery class yesterday and made a blue bowl for my grandma."),
     ("Melanie", "That sounds great! Got any pictures?"),
     ("Caroline", "Yes! Also I moved to Porto last month, the pottery studio is close by."),
     ("Melanie", "Awesome, thanks for sharing, Caroline!")],
    [("Melanie", "Hi Caroline! Glad to see you again."),
     ("Caroline", "Hey Mel! The pottery teacher said my bowl is ready for the kiln."),
     ("Melanie", "Sounds amazing! We've been hiking with the kids near Sintra."),
     ("Caroline", "Lovely! Thanks, talk soon!")],
]


def _ingest(vault: Vault, user: str = U) -> None:
    for n, session in enumerate(CHAT, start=1):
        vault.add_messages([{"role": "user", "name": who, "content": text}
                            for who, text in session],
                           user_id=user, session_id=f"s{n}", event_time=f"2024-0{n}-10")


def _level(vault: Vault, level: str, user: str = U) -> list:
    return vault.list(user_id=user, filters={"kind": "summary",
                                          "metadata": {"level": level}}).items


def test_topics_are_content_phrases_never_filler_or_speakers(vault: Vault) -> None:
    _ingest(vault)
    consolidate(vault)
    titles = [t.metadata["title"] for t in _level(vault, "topic")]
    assert "About pottery" in titles
    assert not [t for t in titles if is_filler_title(t, ["Caroline", "Melanie"])]
    lowered = " ".join(titles).lower()
    for junk in ("since", "glad", "got", "sounds", "we've", "caroline", "mel"):
        assert f"about {junk}" not in lowered


def test_filler_test_and_phrases() -> None:
    assert is_filler_title("About we've") and is_filler_title("About Since")
    assert is_filler_title("About Mel", ["Melanie"])  # a short form of a speaker's name
    assert not is_filler_title("About adoption agencies", ["Melanie"])
    found = key_phrases("Thanks, Mel! My sister makes pottery; the adoption agencies "
                        "were kind. Seeing you was fun.", ["Melanie", "Caroline"])
    assert found == {"sister": "sister", "agency": "adoption agencies", "adoption": "adoption"}


def test_session_summary_keeps_the_facts_within_its_budget(vault: Vault) -> None:
    _ingest(vault)
    consolidate(vault, config=ConsolidateConfig(max_ratio=0.5, min_tokens=8))
    (s1,) = [s for s in _level(vault, "session") if s.session_id == "s1"]
    source_tokens = sum(len(t.split()) for _, t in CHAT[0])
    body = s1.text.split(": ", 1)[1]
    assert len(s1.text.split()) <= 0.5 * source_tokens
    assert {"pottery", "bowl", "porto"} <= content_words(body)
    assert "Caroline lives in Porto." in body  # the rules reader's canonical statement
    for chatter in ("Good to see you", "sounds great", "thanks for sharing"):
        assert chatter.lower() not in body.lower()
    # a tighter budget keeps fewer words, never more than it is given
    _ingest(vault, "other")
    consolidate(vault, config=ConsolidateConfig(max_ratio=0.2, min_tokens=8))
    (tight,) = [s for s in _level(vault, "session", "other") if s.session_id == "s1"]
    assert len(tight.text.split()) <= max(8, int(0.2 * source_tokens))
    assert "porto" in content_words(tight.text)  # the state statement survives the cut


def test_entity_links_skip_speaker_names(vault: Vault) -> None:
    a = vault.add("Thanks, Mel! Caroline here, the Porto studio opens Monday.", user_id=U,
                  metadata={"speaker": "Caroline"})
    b = vault.add("Wow Caroline, I visited Porto once.", user_id=U,
                  metadata={"speaker": "Melanie"})
    c = vault.add("Caroline, you are so kind. Glad you liked it!", user_id=U,
                  metadata={"speaker": "Melanie"})
    link_new(vault, LinkConfig(similar_k=0, same_session=False))
    links_c = {(l.target, l.kind) for l in vault.get(c.id).links}
    assert (a.id, "entity") in {(l.target, l.kind) for l in vault.get(b.id).links}
    assert not [k for _, k in links_c if k == "entity"]  # only a speaker's name in common


def test_pass_is_incremental_cancellable_and_reports_its_cost(vault: Vault) -> None:
    _ingest(vault)
    stop = threading.Event()
    stop.set()
    cancelled = consolidate(vault, cancel=stop.is_set)
    assert cancelled.cancelled and cancelled.sessions_checked == 0 and not cancelled.created
    done = consolidate(vault)  # the watermark did not move: all sessions are still due
    assert done.sessions_checked == 2 and done.turns_read == 10
    assert done.seconds > 0 and done.to_dict()["seconds_per_1000_turns"] > 0
    vault.add_messages([{"role": "user", "name": "Melanie", "content": "I bought a kiln!"}],
                       user_id=U, session_id="s2")
    again = consolidate(vault)
    assert again.sessions_checked == 1 and again.rewritten["session"] == 1
    report = Scheduler().run_once(vault).to_dict()
    assert report["consolidate"]["cancelled"] is False


def test_an_llm_summary_that_drops_the_facts_is_not_used(vault: Vault) -> None:
    from memvault.models.scripted import ScriptedLLMServer

    _ingest(vault)
    chatty = "Caroline and Melanie greeted each other warmly and chatted happily."
    kept = "Caroline moved to Porto, took a pottery class and made a blue bowl for her grandma."
    with ScriptedLLMServer([chatty, kept]) as server:
        report = consolidate(vault, server.llm(retries=0), ConsolidateConfig(topics=False))
    by_session = {s.session_id: s for s in _level(vault, "session")}
    s1, s2 = by_session["s1"], by_session["s2"]
    assert s1.metadata["summarizer"] == "extractive"
    assert s1.metadata["fallback"] == "rejected: drops the session's facts"
    assert "porto" in content_words(s1.text) and set(report.fallbacks) == {s1.id}
    assert s2.text == kept and s2.metadata["summarizer"] != "extractive"
