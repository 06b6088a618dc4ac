"""The method registry: entry points of the ``bench.methods`` group, plus local plugin files."""

from __future__ import annotations

from bench.errors import BadInputError
from bench.methods.api import DerainMethod, canonical_spec
from bench.registry import Registry

METHODS: Registry = Registry("method", group="bench.methods")


def parse_method_spec(spec: str) -> tuple[str, str | None]:
    """``NAME[:VARIANT]`` -> (name, variant or None)."""
    name, _, variant = spec.strip().partition(":")
    if not name:
        raise BadInputError(f"method spec {spec!r}: expected NAME or NAME:VARIANT (e.g. prenet:rain100l)")
    return name, (variant or None)


def method_class(name: str) -> type[DerainMethod]:
    """The plugin class (or factory carrying ``info``) registered as ``name``."""
    obj = METHODS.load(name)
    if getattr(obj, "info", None) is None:
        raise BadInputError(
            f"method {name!r} ({METHODS.entry(name).source}): the entry point does not provide a DerainMethod "
            f"with an `info` attribute; see the plugin example in README.md"
        )
    return obj


def create_method(spec: str) -> DerainMethod:
    """Instantiate ``NAME[:VARIANT]`` (no weights loaded yet)."""
    name, variant = parse_method_spec(spec)
    cls = method_class(name)
    try:
        method = cls(variant)
    except BadInputError:
        raise
    except Exception as exc:
        from bench.errors import UnknownNameError

        if isinstance(exc, UnknownNameError):
            raise
        raise BadInputError(f"method {spec}: the plugin failed to initialise: {type(exc).__name__}: {exc}") from exc
    return method


def resolve_method_spec(spec: str) -> str:
    """The canonical spec of ``NAME[:VARIANT]`` (``prenet`` -> ``prenet:rain100h``); unknown names and
    variants raise with a suggestion."""
    return create_method(spec).spec


def default_method_specs(warn=None) -> list[str]:
    """What ``--methods all`` means, as canonical specs: every registered method at its default variant, plus
    every variant whose weights ship inside the package (``prenet:ours``); a method without a default (e.g.
    precomputed folders) contributes each configured variant. Broken plugins are skipped (``warn`` receives
    their message)."""
    specs: list[str] = []
    for name in METHODS.names():
        try:
            cls = method_class(name)
        except BadInputError as exc:
            if warn is not None:
                warn(f"skipping method {name}: {exc}")
            continue
        variants = cls.info.variants
        if cls.info.default_variant in variants:
            chosen = [cls.info.default_variant] + [v for v, info in variants.items()
                                                   if info.packaged and v != cls.info.default_variant]
        else:
            chosen = list(variants)
        specs += [canonical_spec(name, variant) for variant in chosen]
    return specs
