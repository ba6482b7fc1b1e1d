"""Shared test configuration: the Hypothesis settings profiles of the whole suite.

Two profiles, both with ``deadline=None`` (an exact sympy decision may take far longer on one
example than on the next, so no test has a per-example deadline):

``default``
    Hypothesis's own defaults otherwise: random examples, failures kept in the local example
    database and replayed first.
``ci``
    Hypothesis's own ``ci`` profile (derandomized, no example database, reproduction blobs
    printed, ``too_slow`` not a failure), which Hypothesis loads by itself on a CI service.

``HYPOTHESIS_PROFILE=ci pytest`` picks one explicitly; without it the profile Hypothesis chose
(``ci`` on a CI service, ``default`` elsewhere) is kept. A test's own ``@settings(...)`` (its
``max_examples`` and suppressed health checks) is built on top of the loaded profile. Plain helper
functions and constants shared by the test files live in ``tests/helpers.py``.
"""

import os

from hypothesis import settings

settings.register_profile("default", settings.get_profile("default"), deadline=None)
settings.register_profile("ci", settings.get_profile("ci"), deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", settings.get_current_profile_name()))
