"""``python -m lakenodes`` is the ``lakenodes`` command."""

from .cli import main

if __name__ == "__main__":
    main()
