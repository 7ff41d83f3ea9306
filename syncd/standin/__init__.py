"""A local stand-in for the Readwise v2 API, for end-to-end tests, `syncd demo` and benchmarks.

It is deliberately independent of the syncd client code it exercises. Behaviour follows
shared/readwise/api.md; faults and rate limiting are described in `syncd.standin.faults`.
"""

from syncd.standin.faults import Fault, FaultPlan
from syncd.standin.library import (
    BookState,
    HighlightState,
    Library,
    LibrarySnapshot,
    ManualClock,
    Tag,
    UnknownIdError,
    generate_library,
    sample_library,
)
from syncd.standin.server import Quirks, RequestRecord, StandinServer

__all__ = [
    "BookState",
    "Fault",
    "FaultPlan",
    "HighlightState",
    "Library",
    "LibrarySnapshot",
    "ManualClock",
    "Quirks",
    "RequestRecord",
    "StandinServer",
    "Tag",
    "UnknownIdError",
    "generate_library",
    "sample_library",
]
