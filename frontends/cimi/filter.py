"""Placeholder until the real filter module lands."""


class FilterError(ValueError):
    pass
