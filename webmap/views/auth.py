"""Sign in and out, and the user's own settings (language, password)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from webmap import accounts
from webmap.accounts import AccountError
from webmap.i18n import remember_language_choice
from webmap.security import current_user, login_user, logout_user, public, safe_next

bp = Blueprint("auth", __name__)

LANGUAGE_CHOICES = [SelectChoice("zh_CN", "中文"), SelectChoice("en", "English")]


class LoginForm(FlaskForm):
    name = StringField(_l("User name"), validators=[DataRequired(), Length(max=accounts.NAME_MAX_LENGTH)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class LanguageForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
    next = HiddenField()


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))],
    )


def render_login(form: LoginForm | None = None, *, error: str | None = None, locked: bool = False) -> str:
    """The login page (also used by the 429 handler with ``locked=True``)."""
    form = form or LoginForm(formdata=None, next=request.values.get("next", ""))
    if locked:
        error = _("Too many sign-in attempts from this computer. Wait a minute and try again.")
    return render_template("login.html", form=form, error=error, locked=locked)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    remember_language_choice()
    default = url_for("home.index")
    if current_user() is not None and request.method == "GET":
        return redirect(safe_next(request.args.get("next"), default))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        return render_login(form)
    if not form.validate_on_submit():
        return render_login(form)
    name = form.name.data.strip()
    user = accounts.authenticate(accounts.current_workspace(), name, form.password.data)
    if user is None:
        g.audit_user = name
        accounts.audit("login.failure", "wrong user name or password")
        return render_login(form, error=_("Wrong user name or password."))
    login_user(user)
    accounts.audit("login.success")
    return redirect(safe_next(form.next.data, default))


@bp.post("/logout")
def logout():
    accounts.audit("logout")
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/account")
def account():
    user = current_user()
    language = LanguageForm(formdata=None, locale=user.locale, next=url_for("auth.account"))
    return render_template("account.html", user=user, language=language, password=PasswordForm(formdata=None))


@bp.post("/account/language")
def set_language():
    form = LanguageForm()
    user = current_user()
    if form.validate_on_submit():
        accounts.set_locale(accounts.current_workspace(), user.name, form.locale.data)
        accounts.audit("settings.language", form.locale.data)
    return redirect(safe_next(form.next.data, url_for("auth.account")))


@bp.post("/account/password")
def change_password():
    user = current_user()
    form = PasswordForm()
    ws = accounts.current_workspace()
    if form.validate_on_submit():
        if accounts.authenticate(ws, user.name, form.current.data) is None:
            form.current.errors.append(_("The current password is wrong."))
        else:
            try:
                accounts.set_password(
                    ws, user.name, form.new.data, min_length=current_app.config["PASSWORD_MIN_LENGTH"]
                )
            except AccountError:
                form.new.errors.append(
                    _("At least %(n)d characters.", n=current_app.config["PASSWORD_MIN_LENGTH"])
                )
            else:
                accounts.audit("password.change")
                flash(_("Your password has been changed."), "success")
                return redirect(url_for("auth.account"))
    language = LanguageForm(formdata=None, locale=user.locale, next=url_for("auth.account"))
    return render_template("account.html", user=user, language=language, password=form), 400
