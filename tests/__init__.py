"""The project's own test suite: ``python -m unittest discover -s tests -t .``."""

import os

# The suite leaves nothing behind on the servers: the migrated templates it
# builds are dropped at exit (users keep them, to start the next run warm).
os.environ.setdefault("TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES", "0")
