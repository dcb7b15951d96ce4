"""``python -m manymodels.cli``: the command without its installed script; tests fall back to it."""

from manymodels.cli import main

if __name__ == "__main__":
    main()
