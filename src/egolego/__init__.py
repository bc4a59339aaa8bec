"""egolego: LEGO (egocentric action frame generation via visual instruction tuning), reimplemented."""

__version__ = "0.1.0"

from .hf_quiet import drop_pil_fallback_notice  # noqa: E402  (logging only: transformers is not imported here)

drop_pil_fallback_notice()


def __getattr__(name: str):
    """Lazy exports: diffusers' pipeline loader looks pipeline components up on the top-level package."""
    if name == "LegoConditioner":
        from .ldm.conditioner import LegoConditioner

        return LegoConditioner
    if name == "LegoPipeline":
        from .ldm.pipeline import LegoPipeline

        return LegoPipeline
    raise AttributeError(f"module 'egolego' has no attribute {name!r}")
