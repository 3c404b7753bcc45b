"""Old import path (course 0.1), kept so that notebooks saved before 0.2 still run: use ``course_utils.viz.conv``."""

from course_utils.viz.conv import *  # noqa: F401,F403 - the old name re-exports the whole module
