"""``python -m lethe``: the ``lethe`` command, so that launchers that take a module run it
(``torchrun --nproc_per_node N -m lethe run ...``, ``accelerate launch -m lethe run ...``)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
