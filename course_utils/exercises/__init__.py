"""The exercises of each lab (``labNN.py``): cases, references and hints for the checks."""
