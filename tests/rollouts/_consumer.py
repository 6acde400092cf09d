"""A consumer process for the fleet tests: a remote live value with a pydantic model.

Usage: python _consumer.py URL TENANT CLIENT_ID LIMIT. Prints one JSON line per value it
holds (``{"id", "value"}``), and ``{"id", "refused"}`` when its model refuses one; runs until
stdin closes.
"""

from __future__ import annotations

import json
import sys

import pydantic

import confhub


def main() -> None:
    url, tenant, client_id, limit = sys.argv[1:5]

    class Settings(pydantic.BaseModel):
        tokens: int = pydantic.Field(le=int(limit))

    def say(**data: object) -> None:
        print(json.dumps({"id": client_id, **data}), flush=True)

    with confhub.open(url) as hub:
        cfg = hub.tenant(tenant, client_id=client_id, labels={"role": "fleet"})
        live = cfg.live("models", "a", model=Settings, cache_file=False)
        live.on_change(lambda old, new: say(value=new.tokens))
        live.on_error(lambda error: say(refused=str(error)[:200]))
        say(value=live.value.tokens)
        sys.stdin.read()
        live.close()


if __name__ == "__main__":
    main()
