"""The error a model raises when it cannot train or forecast on what it was given."""

__all__ = ["TrainError"]


class TrainError(ValueError):
    """Training or forecasting cannot proceed as asked; the message names the problem."""
