"""The released LEGO's fixed sizes, in one light module (the CLI's ``--help`` reads them without importing torch).

They are facts of the authors' files, not settings of ours: the released LDM generates 256 px frames, reads H_i as
256 projector tokens (a 224 px CLIP-L/14 tower) and H_t cut / zero-padded to 77 rows, and its LLaVA sampled up to
1,024 new tokens at temperature 0.2 (``official-code.md``).
"""

IMAGE_SIZE = 256
IMAGE_TOKENS = 256
TEXT_ROWS = 77
MAX_NEW_TOKENS = 1024
TEMPERATURE = 0.2
