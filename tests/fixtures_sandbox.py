"""Sandbox fixtures (servers on 127.0.0.1, generated data) shared by the tests."""
