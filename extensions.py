"""Flask extensions, created unbound here and bound to the app in `create_app()`."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
# Storage (memory:// or Redis) comes from settings at init_app time; limits are declared where
# they apply (API resources, the login form).
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
