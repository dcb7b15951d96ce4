"""``python -m manymodels``: the command without its installed script (a venv not activated,
or no ``bin/`` on PATH). The same ``main`` as the console script, and importing nothing more."""

from manymodels.cli import main

if __name__ == "__main__":
    main()
