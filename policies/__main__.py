"""Two entry points: ``python -m policies lint ...`` and the policy pack the engine runs.

The engine starts this file inside ``policies/`` (``pulumi preview --policy-pack
policies``), so the repository root goes on ``sys.path`` for the shared modules.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if sys.argv[1:2] == ["lint"]:
    import gc

    # One short pass that makes many small objects and no cycles to speak of: reference
    # counting frees them, and the cyclic collector would only cost time (~7% of a lint).
    gc.disable()
    from policies.cli import main

    sys.exit(main(sys.argv[1:]))
else:
    from policies.pack import build_policy_pack

    build_policy_pack()
