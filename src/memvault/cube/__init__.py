"""MemCube: the unit of ownership and transport (see ``docs/memcube.md``).

``dump`` a vault scope to a cube directory, ``load`` one into a vault (verified first),
``inspect`` it, ``compose`` two cubes, ``migrate`` one to another embedding model. The
activation and parametric modules of this package are imported by their users only.
"""

from .compose import compose, migrate
from .format import FORMAT_VERSION, verify
from .transfer import dump, inspect, load

__all__ = ["dump", "load", "inspect", "compose", "migrate", "verify", "FORMAT_VERSION"]
