"""The pure core: configuration, hashing, frame rules and kinds, identity values, lookups.

No I/O and no lake: everything here works on values. Imports only :mod:`lakenodes.errors` and
:mod:`lakenodes._internal`.
"""
