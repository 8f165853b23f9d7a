"""The simulated pipeline: replays a request trace through a configuration, second by second."""
