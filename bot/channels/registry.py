"""The channel registry: adapters by name, built from the settings. Adding a channel is one entry here."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.channels.base import Channel, UnknownChannel
from bot.channels.rasa import RasaCallbackChannel, RasaRestChannel
from bot.channels.web import WebChannel
from bot.settings import Settings
from bot.vocabulary import Channel as ChannelName

FACTORIES: dict[str, Callable[[Settings], Channel]] = {
    ChannelName.WEB: lambda settings: WebChannel(),
    ChannelName.REST: lambda settings: RasaRestChannel(settings.rasa_callback_url),
    ChannelName.CALLBACK: lambda settings: RasaCallbackChannel(settings.rasa_callback_url),
}


def build_channels(settings: Settings) -> dict[str, Channel]:
    """One adapter per registered channel name."""
    return {name: factory(settings) for name, factory in FACTORIES.items()}


def channel(channels: Mapping[str, Channel], name: str) -> Channel:
    """The adapter registered as ``name``; an unknown name is an error that lists the known ones."""
    try:
        return channels[name]
    except KeyError:
        raise UnknownChannel(name, list(channels)) from None
