"""The version of kzsim, recorded in every run's manifest and checked on cluster workers."""

__version__ = "0.1.0"
