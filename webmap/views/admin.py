"""Administration: users and roles, and the audit log (admins only)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webmap import accounts
from webmap.accounts import ROLES, AccountError
from webmap.nav import nav_entry
from webmap.security import current_user, require_role
from webmap.views.auth import LANGUAGE_CHOICES

bp = Blueprint("admin", __name__, url_prefix="/admin")
nav_entry(bp, ".users", _l("Users"), order=900, role="admin", section="admin")
nav_entry(bp, ".audit_log", _l("Audit log"), order=910, role="admin", section="admin")

ROLE_LABELS = {
    "viewer": _l("Viewer"),
    "analyst": _l("Analyst"),
    "inspector": _l("Inspector"),
    "admin": _l("Administrator"),
}
ROLE_HINTS = {
    "viewer": _l("read only"),
    "analyst": _l("+ import data, change settings"),
    "inspector": _l("+ update enforcement cases"),
    "admin": _l("+ manage users"),
}
AUDIT_PAGE_SIZE = 100


@bp.app_template_global()
def role_label(role: str, *, hint: bool = False) -> str:
    """The translated name of a role; with ``hint``, followed by what it may do."""
    label = str(ROLE_LABELS.get(role, role))
    if hint and role in ROLE_HINTS:
        return _("%(role)s (%(rights)s)", role=label, rights=ROLE_HINTS[role])
    return label


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(r, role_label(r, hint=True)) for r in ROLES]


class AddUserForm(FlaskForm):
    name = StringField(_l("User name"), validators=[DataRequired(), Length(max=accounts.NAME_MAX_LENGTH)])
    role = SelectField(_l("Role"), choices=_role_choices, default="viewer")
    locale = SelectField(_l("Language"), choices=LANGUAGE_CHOICES, default="zh_CN")
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(max=1024)])


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=_role_choices)


def _render_users(form: AddUserForm, status: int = 200):
    users = accounts.list_users(accounts.current_workspace())
    return render_template("admin_users.html", users=users, form=form, roles=ROLES), status


@bp.get("/users")
@require_role("admin")
def users():
    return _render_users(AddUserForm(formdata=None))


@bp.post("/users")
@require_role("admin")
def add_user():
    form = AddUserForm()
    if not form.validate_on_submit():
        return _render_users(form, 400)
    try:
        accounts.add_user(
            accounts.current_workspace(),
            form.name.data.strip(),
            form.role.data,
            form.password.data,
            locale=form.locale.data,
            min_length=current_app.config["PASSWORD_MIN_LENGTH"],
        )
    except AccountError as err:
        form.name.errors.append(str(err))
        return _render_users(form, 400)
    accounts.audit("user.add", f"{form.name.data.strip()} ({form.role.data})")
    flash(_("User %(name)s added.", name=form.name.data.strip()), "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<path:name>/role")
@require_role("admin")
def set_role(name: str):
    form = RoleForm()
    if form.validate_on_submit():
        if name == current_user().name and form.role.data != "admin":
            flash(_("You cannot take the administrator role from yourself."), "danger")
        else:
            accounts.set_role(accounts.current_workspace(), name, form.role.data)
            accounts.audit("user.role", f"{name} → {form.role.data}")
            flash(_("Role of %(name)s changed.", name=name), "success")
    return redirect(url_for("admin.users"))


@bp.get("/audit")
@require_role("admin")
def audit_log():
    page = max(1, request.args.get("page", 1, type=int))
    user = request.args.get("user", "").strip() or None
    action = request.args.get("action", "").strip() or None
    entries = accounts.list_audit(
        accounts.current_workspace(),
        limit=AUDIT_PAGE_SIZE + 1,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
        user=user,
        action=action,
    )
    return render_template(
        "admin_audit.html",
        entries=entries[:AUDIT_PAGE_SIZE],
        page=page,
        has_next=len(entries) > AUDIT_PAGE_SIZE,
        user=user or "",
        action=action or "",
    )
