"""The testing kit: deterministic stand-ins for the core's ``Clock`` and
``IdGenerator`` ports, and (in :mod:`adapters.testing.contracts`) the contract suite
of every port as pytest base classes.

This package is for tests only: the core never imports it. ``FakeClock`` and
``SequentialIds`` are pure (no pytest); only ``adapters.testing.contracts`` needs
pytest and pytest-asyncio (the ``testing`` extra).
"""

from rag_core.testing.clock import FakeClock
from rag_core.testing.ids import SequentialIds

__all__ = ["FakeClock", "SequentialIds"]
