"""Sub-command modules of the ``lmech`` command line (the top layer: may import anything).

Each module defines ``add_parser(subparsers)``; :mod:`lmech.cli` wires them in.
"""
