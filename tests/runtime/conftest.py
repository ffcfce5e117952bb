"""Runtime tests run on a real export of an untrained debug model (made once per session):
the `model_dir` and `model` fixtures of tests/conftest.py."""
