"""The course's tooling, used by instructors and maintainers (never imported by a lab notebook):

- ``cli``: the ``course`` command and its subcommands;
- ``build``: writes ``labs/`` from ``solutions/``; ``doctor``: checks a set-up;
- ``slides``: exports the decks to offline reveal.js HTML;
- ``grade``: ``course grade``, which grades a folder of submissions (``command``), running each in a
  sandbox (``sandbox``, ``supervisor``) and judging what it recorded (``replay``).
"""
