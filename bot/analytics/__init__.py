"""Analytics and the knowledge-gap log, rolled up from the conversations' event streams into Redis.

:mod:`bot.analytics.rollup` reads every conversation's stream past its cursor and turns the events into
daily counters, handling times and gap-log entries (one script per conversation: counted once, whichever
process gets there first); :mod:`bot.analytics.report` reads a period of them back; :mod:`bot.analytics.gaps`
clusters the gap log for ``triage gaps`` and the analytics page."""
