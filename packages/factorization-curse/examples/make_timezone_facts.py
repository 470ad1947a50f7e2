"""Write `timezone_facts.jsonl`: 150 real facts, country -> the city its (single) time zone is named after.

Source: the IANA time-zone table shipped by `pytz` (``pytz.country_timezones``), country names from
`pycountry`. Only countries with exactly one zone are used, and zones named after the country itself
(``Europe/Andorra``) are dropped, so every backward question (city -> country) has one answer that
cannot be read off the question. Run from the repository root:

    uv run python packages/factorization-curse/examples/make_timezone_facts.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

N_FACTS = 150


def timezone_facts(n: int = N_FACTS, seed: int = 0) -> list[dict]:
    """`n` facts {"subject": country, "relation": ..., "object": city}, drawn with `seed`."""
    import pycountry
    import pytz

    rows = []
    for code, zones in sorted(pytz.country_timezones.items()):
        if len(zones) != 1:
            continue
        city = zones[0].split("/")[-1].replace("_", " ")
        country = pycountry.countries.get(alpha_2=code)
        if country is None:
            continue
        name = getattr(country, "common_name", None) or country.name
        if city.lower() in name.lower() or name.lower() in city.lower():
            continue
        rows.append({"subject": name, "relation": "sets its clocks by", "object": city})
    cities = [r["object"] for r in rows]
    rows = [r for r in rows if cities.count(r["object"]) == 1]
    rng = random.Random(seed)
    return sorted(rng.sample(rows, n), key=lambda r: r["subject"])


def main() -> None:
    out = Path(__file__).with_name("timezone_facts.jsonl")
    # a relation line: question templates that read well for this verb relation
    lines = [{"relation": "sets its clocks by",
              "forward_question": "which city does {subject} set its clocks by ?",
              "backward_question": "which country sets its clocks by {object} ?"}]
    lines += timezone_facts()
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    print(f"wrote {out} ({len(lines) - 1} facts)")


if __name__ == "__main__":
    main()
