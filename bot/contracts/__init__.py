"""The typed shapes that cross the seams between NLU, policy, engine, store and handoff gateway.

Each is a frozen dataclass with a strict decoder from the wire (``from_rasa``/``from_dict``) and an encoder
back to it, so the rest of the code reads fields instead of decoding dicts with its own defaults.
"""
