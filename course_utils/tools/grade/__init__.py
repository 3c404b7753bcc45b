"""``course grade``: ``command`` (the command line and the gradebook), ``supervisor`` (starts and
watches the sandbox processes of one notebook), ``sandbox`` (runs the notebook and the student's
functions), ``replay`` (judges the recorded outcomes with the students' own checks)."""
