"""The package's version, in one place: the package, its build (pyproject.toml) and every
file it writes read it from here."""

__version__ = "0.1.0"
