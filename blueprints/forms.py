"""The desk's HTML forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

_PASSWORD = [DataRequired(), Length(max=256)]


class Form(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type hints
    """Base of the desk's forms."""


class SetupForm(Form):
    username = StringField("Username", validators=[DataRequired(), Length(min=3, max=32)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=_PASSWORD)
    confirm = PasswordField(
        "Confirm password",
        validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")],
    )
    submit = SubmitField("Create admin")


class LoginForm(Form):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=_PASSWORD)
    submit = SubmitField("Sign in")


class TwoFactorForm(Form):
    code = StringField(
        "Authenticator code or recovery code", validators=[DataRequired(), Length(max=32)]
    )
    submit = SubmitField("Verify")


class ProfileForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    submit = SubmitField("Save profile")


class PasswordForm(Form):
    current = PasswordField("Current password", validators=_PASSWORD)
    new = PasswordField("New password", validators=_PASSWORD)
    confirm = PasswordField(
        "Confirm new password",
        validators=[DataRequired(), EqualTo("new", message="Passwords do not match.")],
    )
    submit = SubmitField("Change password")


class ConfirmTwoFactorForm(Form):
    code = StringField("6-digit code", validators=[DataRequired(), Length(min=6, max=8)])
    submit = SubmitField("Turn on two-factor")


class DisableTwoFactorForm(Form):
    password = PasswordField("Current password", validators=_PASSWORD)
    code = StringField("Code or recovery code", validators=[DataRequired(), Length(max=32)])
    submit = SubmitField("Turn off two-factor")


class ActionForm(Form):
    """A bare POST button (generate, revoke, sign out): only the CSRF token matters."""

    submit = SubmitField("Go")
