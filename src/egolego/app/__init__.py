"""The web app: ``egolego serve`` (try a model, compare eval runs) and ``egolego study`` (the paper's user study)."""
