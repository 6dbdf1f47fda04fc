"""Assessment: the control library (catalogs, crosswalk, checks) and the pure evaluation of
checks over observations at a time. Services feed it rows; it never reads a database."""

from evidence.assessment.library import Library, builtin_controls, load_library

__all__ = ["Library", "builtin_controls", "load_library"]
