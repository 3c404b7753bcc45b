"""``course grade``: ``command`` (the command line), ``gradebook`` (its types and files),
``submissions`` (finding and grading one), ``supervisor`` (starts and watches the sandboxes of one
notebook), ``isolation`` (the sandbox: namespaces, a dedicated uid, limits), ``sandbox`` (what runs in
it: the notebook and the student's functions), ``replay`` (judges the recorded outcomes with the
students' own checks)."""
