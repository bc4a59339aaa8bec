"""egolego: LEGO (egocentric action frame generation via visual instruction tuning), reimplemented."""

__version__ = "0.1.0"
