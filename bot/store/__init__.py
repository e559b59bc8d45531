"""State on Redis: conversations, transcripts, idempotency records, tickets and the queue."""
