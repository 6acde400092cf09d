"""``python -m confhub.cli``: the same as the ``confhub`` command."""

from . import main

main()
