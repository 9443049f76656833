"""Recipes for the guard's learned head: which features it reads and how it is trained.

``guard_head_search.py`` scores every recipe here under leave-one-source-out;
``train_guard_head.py`` and ``bench_guard.py`` use :data:`FINAL`. Recipes are never
removed once measured, so the search table keeps the rejected ones beside the winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from memvault.guard.learned import WORDS, Feats, Spec, features


@dataclass(frozen=True)
class Recipe:
    what: str
    spec: Spec = WORDS
    group_power: float = 0.0
    l2: float = 1e-4
    steps: int = 300
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_key(self) -> str:
        return self.spec.encode()

    def features(self, view: str, rules: Iterable[str] = ()) -> Feats:
        return features(view, rules, self.spec)

    def fit_kwargs(self) -> dict[str, Any]:
        return {"group_power": self.group_power, "l2": self.l2, "steps": self.steps,
                "spec": self.spec}


C345 = Spec(chars=(3, 4, 5))
RECIPES: dict[str, Recipe] = {
    "A words": Recipe("word uni+bigrams, class-balanced (guard v2 head)"),
    "B words+char345": Recipe("+ hashed char 3-5-grams (own block scale)", C345),
    "C words+char345, sources evened": Recipe("B, each source weighted n^0.5 inside its class",
                                              C345, group_power=0.5),
    "D words+char345+rules": Recipe("B + names of the rules that fired",
                                    Spec(chars=(3, 4, 5), rules=True)),
    "E words+rules": Recipe("A + names of the rules that fired", Spec(rules=True)),
    "F words, sources evened": Recipe("A, each source weighted n^0.5 inside its class",
                                      group_power=0.5),
}

FINAL = "B words+char345"
