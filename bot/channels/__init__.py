"""Channel adapters: one small interface (:class:`bot.channels.base.Channel`), registered by name in
:mod:`bot.channels.registry`. See docs/channels.md for how to add one."""
