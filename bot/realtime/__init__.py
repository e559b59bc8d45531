"""Websocket plumbing shared by the widget's sockets (bot.app) and the agents' consoles (handoff_gateway): the
per-process event hub, frame reading and sending, supervised connection tasks, and how a failure maps to an
HTTP status, a close code and whether to retry. Nothing here imports the web app, so the desk depends on it
without depending on the app that composes the desk."""
