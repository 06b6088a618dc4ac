"""The method plugin API, the method registry and weights resolution."""

from bench.methods.api import DerainMethod, MethodInfo, PrecomputedMethod, Variant, WeightsFile

__all__ = ["DerainMethod", "MethodInfo", "PrecomputedMethod", "Variant", "WeightsFile"]
