"""A small app with real Jinja templates, flashed messages, redirects and JSON.

The request-assertion tests run against it; built with ``db.create_all()``
(tests set ``alembic_config = False``).
"""

from __future__ import annotations

import json
import typing as t

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    stream_template,
    url_for,
)
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

# The default model class: the version matrix includes Flask-SQLAlchemy 3.0,
# which has no DeclarativeBase support.
db = SQLAlchemy()


class Item(db.Model):
    __tablename__ = "page_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)


#: The JSON document ``GET /api/item`` returns.
ITEM_DOCUMENT: dict[str, t.Any] = {
    "id": 7,
    "name": "widget",
    "tags": ["a", "b"],
    "owner": {"name": "ann", "email": "ann@example.com"},
}


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="pages-test-secret")
    app.config.update(config or {})
    db.init_app(app)

    @app.get("/")
    def index() -> str:
        names = list(db.session.scalars(sa.select(Item.name).order_by(Item.name)))
        return render_template("index.html", title="Home", items=names)

    @app.get("/about")
    def about() -> str:
        return render_template("about.html", title="About")

    @app.get("/two")
    def two() -> str:
        sidebar = render_template("partial.html", title="Partial")
        return render_template("index.html", title="Home", items=[], sidebar=sidebar)

    @app.get("/string")
    def string() -> str:
        return render_template_string("Hello {{ who }}!", who="world")

    @app.get("/stream")
    def stream() -> Response:
        return Response(stream_template("stream.html", rows=["r1", "r2", "r3"]))

    @app.get("/missing-template")
    def missing_template() -> str:
        return render_template("no-such-template.html")

    @app.post("/items")
    def add_item() -> t.Any:
        db.session.add(Item(name=request.form["name"]))
        db.session.commit()
        flash("Item saved", "success")
        flash("Plain note")
        return redirect(url_for("index"))

    @app.get("/go/<int:code>")
    def go(code: int) -> t.Any:
        return redirect("/target?from=go", code=code)

    @app.get("/go-absolute")
    def go_absolute() -> t.Any:
        return redirect(url_for("target", _external=True))

    @app.get("/go-external")
    def go_external() -> t.Any:
        return redirect("https://example.com/elsewhere")

    @app.get("/go-twice")
    def go_twice() -> t.Any:
        return redirect("/go/302")

    @app.get("/target")
    def target() -> str:
        return f"target reached from {request.args.get('from')}"

    @app.get("/status/<int:code>")
    def status(code: int) -> t.Any:
        return ("", code) if code == 204 else (f"status {code} body", code)

    @app.get("/long-error")
    def long_error() -> t.Any:
        return "x" * 1000, 400

    @app.get("/binary-error")
    def binary_error() -> Response:
        return Response(bytes(range(256)), status=500, mimetype="application/octet-stream")

    @app.get("/api/item")
    def api_item() -> t.Any:
        return jsonify(ITEM_DOCUMENT)

    @app.post("/api/items")
    def api_create() -> t.Any:
        return jsonify(id=8, **request.get_json()), 201, {"Location": "/api/items/8"}

    @app.get("/api/as-html")
    def api_as_html() -> str:
        return json.dumps(ITEM_DOCUMENT)  # JSON text, but served as text/html

    return app
