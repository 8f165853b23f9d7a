"""Helpers shared by the test modules: paths, the CLI runner, config writers, problem builders and the
real servers (Prometheus, the Kubernetes API mock, a TCP proxy) the tests drive."""
