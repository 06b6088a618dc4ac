"""bench: a benchmark harness for single-image deraining.

Data flows one way: dataset -> method -> outputs on disk -> metrics -> results store -> report.
"""

__version__ = "0.1.0"
