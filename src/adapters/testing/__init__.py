"""The adapters' side of the testing kit: the contract suite of every port as a pytest
base class (:mod:`adapters.testing.contracts`), for this project's adapters and a
downstream project's alike. The pure half (a fake clock, an id generator) is
:mod:`rag_core.testing`; the in-memory adapters are :mod:`adapters.memory`."""
