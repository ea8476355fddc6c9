"""Error responses: JSON ``{"error": message, "status": code}`` under ``/api/``, a page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from layers.errors import CivicmapError
from webmap.security import is_api_request

log = logging.getLogger(__name__)


def _page_message(err: HTTPException) -> str:
    code = err.code or 500
    if isinstance(err, CSRFError):
        return _("The form has expired or did not come from this site. Reload the page and try again.")
    if code == 413:
        limit_mb = (request.max_content_length or 0) / (1024 * 1024)
        return _("The upload is larger than the limit of %(size)s MB.", size=f"{limit_mb:g}")
    messages = {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("Your role does not allow this page."),
        404: _("No such page."),
        405: _("This page does not accept that kind of request."),
        429: _("Too many requests. Wait a minute and try again."),
    }
    return messages.get(code, _("Something went wrong on the server. The error has been logged."))


def json_error(code: int, message: str, **extra):
    """A JSON error response: ``{"error": message, "status": code, **extra}``."""
    response = jsonify({"error": message, "status": code, **extra})
    response.status_code = code
    return response


def init_errors(app: Flask) -> None:
    """Install the error handlers."""

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        code = err.code or 500
        if code >= 500:
            log.error("%s %s: %s", request.method, request.path, err.description)
        if is_api_request():
            response = json_error(code, err.description or err.name)
            if code == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="civicmap"'
            return response
        if code == 429 and request.endpoint == "auth.login":
            from webmap.views.auth import render_login

            return render_login(locked=True), 429
        return render_template("error.html", code=code, message=_page_message(err)), code

    @app.errorhandler(CivicmapError)
    def user_error(err: CivicmapError):
        if is_api_request():
            return json_error(400, str(err))
        return render_template("error.html", code=400, message=str(err)), 400
