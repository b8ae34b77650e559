"""The test suite: each folder tests the ``chaosmesh_ext`` package it is named after
(``tests/mesh/translate`` tests ``chaosmesh_ext/mesh/translate``); emulators, helpers and
fixtures shared by more than one folder live in ``tests/support`` and are imported as
``from tests.support.<module> import ...``."""
