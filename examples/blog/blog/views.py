"""The blog's JSON API, plus one small HTML page."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.exceptions import HTTPException

from blog import db
from blog.models import Post, Tag, User

bp = Blueprint("blog", __name__)

# Captured once at import time, as many applications do.  It is the same
# scoped session as ``db.session``, so it always talks to the current one.
session = db.session


@bp.errorhandler(HTTPException)
def json_error(error: HTTPException) -> ResponseReturnValue:
    return {"error": error.description}, error.code or 500


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _required_str(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        abort(400, f"{field!r} is required")
    return value.strip()


@bp.post("/users")
def create_user() -> ResponseReturnValue:
    data = _json_body()
    user = User(
        username=_required_str(data, "username"),
        email=_required_str(data, "email"),
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return {"error": "username or email already taken"}, 409
    return user.to_dict(), 201


@bp.get("/users/<int:user_id>")
def get_user(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id, description="no such user")
    return user.to_dict()


def get_or_create_tags(names: list[str]) -> list[Tag]:
    """Return one tag per distinct (normalised) name, creating missing ones."""
    wanted = sorted({name.strip().lower() for name in names if name.strip()})
    if not wanted:
        return []
    existing = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    return [existing.get(name) or Tag(name=name) for name in wanted]


@bp.post("/users/<int:user_id>/posts")
def create_post(user_id: int) -> ResponseReturnValue:
    author = db.get_or_404(User, user_id, description="no such user")
    data = _json_body()
    tag_names = data.get("tags", [])
    if not isinstance(tag_names, list) or not all(isinstance(name, str) for name in tag_names):
        abort(400, "'tags' must be a list of strings")
    post = Post(
        author=author,
        title=_required_str(data, "title"),
        body=_required_str(data, "body"),
        tags=get_or_create_tags(tag_names),
    )
    session.add(post)
    session.commit()
    return post.to_dict(), 201


@bp.get("/posts")
def list_posts() -> ResponseReturnValue:
    posts = db.session.scalars(
        select(Post)
        .where(Post.published)
        .options(joinedload(Post.author), selectinload(Post.tags))
        .order_by(Post.created_at.desc(), Post.id.desc())
    )
    return jsonify([post.to_dict() for post in posts])


@bp.post("/posts/<int:post_id>/publish")
def publish_post(post_id: int) -> ResponseReturnValue:
    post = db.get_or_404(Post, post_id, description="no such post")
    post.published = True
    db.session.commit()
    if request.mimetype == "application/x-www-form-urlencoded":
        # Submitted by the form on the index page.
        flash(f"Published: {post.title}")
        return redirect(url_for("blog.index"))
    return post.to_dict()


@bp.post("/posts/<int:post_id>/view")
def count_view(post_id: int) -> ResponseReturnValue:
    """Bump the view counter with plain SQL on its own engine connection."""
    with db.engine.begin() as conn:
        updated = conn.execute(
            text("UPDATE posts SET views = views + 1 WHERE id = :id"),
            {"id": post_id},
        )
        if updated.rowcount == 0:
            abort(404, "no such post")
        views = conn.execute(text("SELECT views FROM posts WHERE id = :id"), {"id": post_id}).scalar_one()
    return {"id": post_id, "views": views}


@bp.get("/")
def index() -> ResponseReturnValue:
    published = db.session.scalars(
        select(Post).where(Post.published).order_by(Post.created_at.desc(), Post.id.desc())
    ).all()
    drafts = db.session.scalars(select(Post).where(~Post.published).order_by(Post.id)).all()
    return render_template("index.html", published=published, drafts=drafts)
