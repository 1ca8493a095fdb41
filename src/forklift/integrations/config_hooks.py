"""What entering ``forklift.parallel_config`` does beyond setting values (config hooks).

:mod:`forklift.config` sits low in the house and knows backends only by name; it imports
this module by name at the first ``__enter__`` (its ``PLUGIN_MODULES``), and this module
plugs in, in order:

1. :func:`forklift.parallel.selection.check_entered_settings` - refuse an unknown backend
   name, or ``inner_max_num_threads`` for a backend that cannot honour it, where the block is
   written rather than at the first call;
2. :func:`forklift.integrations.joblib.route_joblib` - make joblib code inside the block
   (scikit-learn's ``n_jobs``) run on the block's forklift backend;

and gives the backend registry :func:`forklift.integrations.joblib.joblib_registered`, so
names registered with joblib only (``register_spark()``'s ``"spark"``) work in forklift. The
registry loads this module too when it meets a name it does not know.

Importing it does not import joblib; the second hook does, when a block is entered and joblib
is installed.
"""

from __future__ import annotations

from forklift.config import add_enter_hook
from forklift.integrations.joblib import joblib_registered, route_joblib
from forklift.parallel.backends.registry import add_name_lookup
from forklift.parallel.selection import check_entered_settings

__all__: list[str] = []

add_enter_hook(check_entered_settings)
add_enter_hook(route_joblib)
add_name_lookup(joblib_registered)
