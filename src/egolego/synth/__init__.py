"""EgoSynth: procedural egocentric scenes and actions, written in the real Ego4D / EPIC-KITCHENS formats."""
