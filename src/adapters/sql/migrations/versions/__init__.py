"""One module per migration, ``v<NNNN>_<slug>.py``, revision ids ``0001``, ``0002``, ..."""
