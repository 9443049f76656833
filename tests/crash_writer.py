"""Child process for tests/test_crash.py: write to a vault in a loop until SIGKILLed.

Usage: ``python crash_writer.py DB_PATH SEED [--no-save]``

It opens ``Vault(DB_PATH, embedder="hash")``, prints ``READY <index report>`` and then,
forever, picks an operation (add, add_many of 1-20, update, delete; now and then a search
or an index snapshot save) and reports it on stdout, one flushed line each:

* ``TRY <op> <batch_size> <id>:<sha256>[,<id>:<sha256>...]`` just before the call
  (``-`` for an id the library will choose, ``-`` for the sha of a delete, which keeps
  the text; ``batch_size`` is add_many's transaction size, 1 for the other ops);
* ``ACK <op> <id> <version> <sha256>`` for every write the call acknowledged, printed
  only after the call has returned;
* ``END`` once all ACK lines of the call are out.

Every line is written with one ``write`` call on a pipe (atomic below PIPE_BUF), so a
SIGKILL can cut the stream only between lines. The parent owns all checking: this
script never verifies anything, it only writes and reports.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path

from memvault import Vault
from memvault.ids import new_id

_NAMES = ["Alice", "Bob", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun"]
_VERBS = ["likes", "visited", "booked", "cancelled", "prefers", "forgot", "planned", "met"]
_THINGS = ["green tea", "the dentist", "Lisbon", "a jazz concert", "the quarterly report",
           "sourdough bread", "a bike repair", "the museum", "her sister", "a flight to Oslo"]
_KINDS = ["note", "fact", "event", "preference"]
_USERS = ["u1", "u2", "u3", None]
_MAX_SECONDS = 120.0  # never outlive a parent that died without killing us


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_text(rng: random.Random) -> str:
    # The trailing token makes every text unique (so every content hash is new) and gives
    # the lexical index a term that matches exactly one memory.
    return (f"{rng.choice(_NAMES)} {rng.choice(_VERBS)} {rng.choice(_THINGS)} "
            f"tok{rng.getrandbits(48):012x}")


def main(argv: list[str]) -> int:
    db, seed = Path(argv[0]), int(argv[1])
    allow_save = "--no-save" not in argv[2:]
    rng = random.Random(seed)
    vault = Vault(db, embedder="hash")
    active: list[str] = []
    for item in vault.export():  # current version of every memory, any status
        if item.status == "active":
            active.append(item.id)
    emit(f"READY {vault.searcher.report.get('index', '?')}")

    deadline = time.monotonic() + _MAX_SECONDS
    while time.monotonic() < deadline:
        r = rng.random()
        if r < 0.25 or not active:
            text = make_text(rng)
            emit(f"TRY add 1 -:{sha(text)}")
            item = vault.add(text, kind=rng.choice(_KINDS), user_id=rng.choice(_USERS),
                             tags=[rng.choice(_VERBS)], importance=rng.random())
            emit(f"ACK add {item.id} {item.version} {sha(item.text)}")
            active.append(item.id)
        elif r < 0.50:
            records = [{"text": make_text(rng), "kind": rng.choice(_KINDS),
                        "user_id": rng.choice(_USERS),
                        "metadata": {"n": rng.randrange(1000)}}
                       for _ in range(rng.randint(1, 20))]
            if rng.random() < 0.5:  # half the batches choose their own ids
                for rec in records:
                    rec["id"] = new_id()
            batch_size = rng.choice([5, 256])  # 5: one call, several transactions
            emit(f"TRY add_many {batch_size} " + ",".join(
                f"{rec.get('id', '-')}:{sha(rec['text'])}" for rec in records))
            items = vault.add_many(records, batch_size=batch_size)
            for item in items:
                emit(f"ACK add_many {item.id} {item.version} {sha(item.text)}")
            active.extend(i.id for i in items)
        elif r < 0.80:
            target = rng.choice(active)
            text = make_text(rng)
            emit(f"TRY update 1 {target}:{sha(text)}")
            item = vault.update(target, text, importance=rng.random())
            emit(f"ACK update {item.id} {item.version} {sha(item.text)}")
        elif r < 0.92:
            target = active.pop(rng.randrange(len(active)))
            emit(f"TRY delete 1 {target}:-")
            item = vault.delete(target, reason="crash test")
            emit(f"ACK delete {item.id} {item.version} {sha(item.text)}")
        elif r < 0.995 or not allow_save:
            emit("TRY search 1 -:-")
            vault.search(make_text(rng), k=5)
        else:
            emit("TRY save 1 -:-")
            vault.searcher.save()  # a kill mid-save must leave a loadable or no snapshot
        emit("END")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
