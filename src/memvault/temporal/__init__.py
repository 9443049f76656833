"""Current truth: what held when. Statements that change a person's state are read from
memories as they are written (:mod:`.statements`), and close the valid time of the
earlier statements they replace (:mod:`.supersede`). Below the vault: it reads text and
plans store operations, and imports nothing above storage."""

from .statements import SINGLE, Statement, self_name, statements
from .supersede import LINK_KIND, plan

__all__ = ["LINK_KIND", "SINGLE", "Statement", "plan", "self_name", "statements"]
