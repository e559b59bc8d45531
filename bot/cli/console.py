"""The CLI's console helpers live in ``bot.terminal`` (the desk's commands use them too, without the bot's CLI)."""

from bot.terminal import console, friendly_errors, progress_status, settings

__all__ = ["console", "friendly_errors", "progress_status", "settings"]
