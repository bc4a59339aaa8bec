"""EgoSynth's vocabulary: object kinds, colours and verbs, with the EPIC-KITCHENS-100 class ids.

The verb and noun class ids are the real EPIC-100 ids (``EPIC_100_verb_classes.csv`` /
``EPIC_100_noun_classes.csv``), so EgoSynth's annotation files use the same label space as the real
dataset: "wipe" belongs to the real class ``wash`` (2), "stir" to ``mix`` (10), "push" to ``press`` (21).
"""

from __future__ import annotations

from dataclasses import dataclass

# Named colours (RGB in 0..255). Chosen far apart so that a coarse colour test can tell them apart.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "blue": (40, 80, 210),
    "green": (40, 160, 60),
    "yellow": (235, 205, 40),
    "orange": (240, 130, 30),
    "purple": (140, 60, 170),
    "white": (235, 235, 230),
    "black": (35, 35, 40),
    "brown": (130, 85, 45),
    "grey": (140, 140, 145),
}

SKIN = (224, 172, 140)
SLEEVE = (60, 60, 75)


@dataclass(frozen=True)
class Kind:
    """An object kind: how it is drawn and what can be done with it."""

    name: str  # the noun in narrations ("cup")
    epic_noun: str  # EPIC noun column form ("board:chopping")
    epic_class: int  # EPIC-100 noun_class id
    shape: str  # drawing routine in ``shapes.py``
    size: tuple[float, float]  # (w, h) as fractions of the frame height
    colors: tuple[str, ...]  # colours an instance may take
    portable: bool = True  # can be taken / put / poured from

    @property
    def phrase(self) -> str:
        """Natural-language noun ("chopping board")."""
        if ":" in self.epic_noun:
            head, mod = self.epic_noun.split(":", 1)
            return f"{mod} {head}"
        return self.name


KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("cup", "cup", 13, "cup", (0.13, 0.16), ("red", "blue", "green", "yellow", "white")),
        Kind("bowl", "bowl", 7, "bowl", (0.22, 0.12), ("blue", "green", "white", "purple")),
        Kind("plate", "plate", 2, "plate", (0.26, 0.08), ("white", "blue", "yellow")),
        Kind("knife", "knife", 4, "knife", (0.26, 0.04), ("grey",)),
        Kind("bottle", "bottle", 15, "bottle", (0.08, 0.28), ("green", "blue", "purple", "red")),
        Kind("tomato", "tomato", 43, "round", (0.11, 0.11), ("red",)),
        Kind("carrot", "carrot", 41, "carrot", (0.22, 0.06), ("orange",)),
        Kind("sponge", "sponge", 9, "sponge", (0.13, 0.08), ("yellow",)),
        Kind("pan", "pan", 5, "pan", (0.26, 0.12), ("black", "grey")),
        Kind("jar", "jar", 40, "jar", (0.11, 0.17), ("orange", "purple", "green", "yellow")),
        Kind("box", "box", 23, "box", (0.20, 0.15), ("brown", "blue", "red")),
        Kind("spoon", "spoon", 1, "spoon", (0.20, 0.04), ("grey", "brown")),
        Kind("board", "board:chopping", 18, "board", (0.34, 0.10), ("brown",), portable=False),
        Kind("drawer", "drawer", 8, "drawer", (0.34, 0.13), ("brown", "white", "grey"), portable=False),
        Kind("stove", "hob", 24, "stove", (0.34, 0.12), ("black",), portable=False),
    ]
}


@dataclass(frozen=True)
class Verb:
    """A verb: which kinds it acts on, which second object it needs, and its words."""

    name: str  # EPIC verb column ("turn-on")
    epic_class: int
    third_person: str  # "takes"
    targets: tuple[str, ...]  # kinds it can act on
    second: tuple[str, ...] = ()  # kinds of the required second object (tool or destination)
    second_role: str = ""  # "on" | "into" | "with"


VERBS: dict[str, Verb] = {
    v.name: v
    for v in [
        Verb("take", 0, "takes", ("cup", "bowl", "plate", "knife", "bottle", "tomato", "carrot",
                                  "sponge", "jar", "spoon")),
        Verb("put", 1, "puts", ("cup", "bowl", "tomato", "carrot", "sponge", "jar", "knife"),
             ("plate", "board"), "on"),
        Verb("open", 3, "opens", ("drawer", "box", "jar", "bottle")),
        Verb("close", 4, "closes", ("drawer", "box", "jar", "bottle")),
        Verb("cut", 7, "cuts", ("tomato", "carrot"), ("knife",), "with"),
        Verb("pour", 9, "pours", ("bottle", "jar"), ("cup", "bowl", "pan"), "into"),
        Verb("wipe", 2, "wipes", ("plate", "board"), ("sponge",), "with"),
        Verb("push", 21, "pushes", ("box", "pan", "bowl", "board", "cup", "jar")),
        Verb("turn-on", 6, "turns on", ("stove",)),
        Verb("turn-off", 8, "turns off", ("stove",)),
        Verb("stir", 10, "stirs", ("bowl", "pan"), ("spoon",), "with"),
    ]
}

# The real EPIC-100 class keys of the classes our verbs belong to (for the class files).
EPIC_VERB_KEYS = {0: "take", 1: "put", 2: "wash", 3: "open", 4: "close", 6: "turn-on", 7: "cut",
                  8: "turn-off", 9: "pour", 10: "mix", 21: "press"}
EPIC_VERB_CATEGORY = {0: "retrieve", 1: "leave", 2: "clean", 3: "access", 4: "block", 6: "access",
                      7: "split", 8: "block", 9: "merge", 10: "merge", 21: "manipulate"}
EPIC_NOUN_CATEGORY = {
    "cup": "crockery", "bowl": "crockery", "plate": "crockery", "knife": "cutlery", "spoon": "cutlery",
    "bottle": "containers", "jar": "containers", "box": "containers", "tomato": "vegetables",
    "carrot": "vegetables", "sponge": "cleaning equipment and material", "pan": "cookware",
    "board": "utensils", "drawer": "furniture", "stove": "appliances",
}

# Ego4D's structured verbs look like "take_(pick,_grab,_get)".
EGO4D_STRUCTURED_VERB = {
    "take": "take_(pick,_grab,_get)", "put": "put_(place,_leave,_drop)", "open": "open_(unseal,_uncover)",
    "close": "close_(seal,_cover)", "cut": "cut_(cut,_chop,_slice)", "pour": "pour",
    "wipe": "wipe", "push": "push_(press)", "turn-on": "turn_on_(activate,_switch_on)",
    "turn-off": "turn_off_(deactivate,_switch_off)", "stir": "stir_(mix,_whisk)",
}
