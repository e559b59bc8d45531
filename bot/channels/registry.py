"""The channel registry: adapters by name, built from the settings. Adding a channel is one entry here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.channels.base import Channel, UnknownChannel
from bot.channels.dingtalk import DingTalkChannel
from bot.channels.platform import load_apps
from bot.channels.rasa import RasaCallbackChannel, RasaRestChannel
from bot.channels.web import WebChannel
from bot.channels.wecom import WeComChannel
from bot.settings import Settings
from bot.store.keys import Keys
from bot.vocabulary import Channel as ChannelName

FACTORIES: dict[str, Callable[[Settings], Channel]] = {
    ChannelName.WEB: lambda settings: WebChannel(),
    ChannelName.REST: lambda settings: RasaRestChannel(settings.rasa_callback_url),
    ChannelName.CALLBACK: lambda settings: RasaCallbackChannel(settings.rasa_callback_url),
}


def build_channels(settings: Settings, redis: Any = None) -> dict[str, Channel]:
    """One adapter per registered channel name; WeCom and DingTalk where an app is configured (they keep
    their access tokens and pacing in Redis, so they need its client)."""
    channels = {name: factory(settings) for name, factory in FACTORIES.items()}
    if redis is not None:
        apps, keys = load_apps(settings), Keys(settings.redis_prefix)
        if apps.wecom:
            channels[ChannelName.WECOM] = WeComChannel(apps.wecom, redis, keys)
        if apps.dingtalk:
            channels[ChannelName.DINGTALK] = DingTalkChannel(apps.dingtalk, redis, keys)
    return channels


def channel(channels: Mapping[str, Channel], name: str) -> Channel:
    """The adapter registered as ``name``; an unknown name is an error that lists the known ones."""
    try:
        return channels[name]
    except KeyError:
        raise UnknownChannel(name, list(channels)) from None
