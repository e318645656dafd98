"""The VectorIndex on Qdrant Edge (qdrant-edge-py): Qdrant's engine in-process, on a folder.

The embedded alternative to qdrant-client's local mode, which searches by brute
force in Python. See :class:`EdgeIndex`.
"""

from adapters.qdrant_edge.index import EdgeIndex

__all__ = ["EdgeIndex"]
