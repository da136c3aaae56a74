"""``python -m landscape ...``: the same CLI as the ``landscape`` command."""

from landscape.cli import entry_point

if __name__ == "__main__":
    entry_point()
