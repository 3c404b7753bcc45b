"""Correct implementations written another way than the reference, one module per lab (``labNN.py``).

Each module declares ``PROBES`` (the registry of ``tests/mutants``): for every exercise of the lab at least
one correct function that differs from the course's reference the way a student's may -- another loop order,
float64 inside, vectorised instead of looped (or the reverse), numpy instead of torch where the result allows
it, the library's own convention where the lab cites it, the course's function of an earlier exercise where
the lab says to reuse it -- each with one line saying how it differs. ``tests/test_probes.py`` asserts that
every probe passes its check on 100 seeds: a check that fails one rejects a correct answer.

A new lab adds ``tests/probes/labNN.py`` in the same commit as its exercises.
"""
