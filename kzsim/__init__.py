"""kzsim: Monte Carlo risk simulator for Bitcoin mining in Kazakhstan."""

from kzsim.api import compare, simulate
from kzsim.loading import ScenarioError, load_scenario
from kzsim.results import Results
from kzsim.scenario import Scenario

__version__ = "0.1.0"

__all__ = ["Results", "compare", "Scenario", "ScenarioError", "__version__", "load_scenario", "simulate"]
