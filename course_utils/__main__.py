import sys

from course_utils.cli import main

sys.exit(main())
