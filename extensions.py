"""Flask extensions, created unbound here and bound to the app in `create_app()`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
# Live updates to the pages (blueprints/realtime.py). Threads, as gunicorn's gthread worker
# serves the desk; the default CORS policy admits the desk's own origin only.
socketio = SocketIO(async_mode="threading")
