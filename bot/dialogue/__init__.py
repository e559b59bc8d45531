"""The dialogue evaluation: labelled conversations (``nlu_data/eval/``) run through the real engine, each bot
turn classified as answer / clarify / offer_human / handoff / chitchat / rephrase and scored
(``triage eval --dialogue``)."""
